#pragma once
// Generated prose for the curation tests: documents that pass every published rule
// (sentences with stop words, terminal punctuation, no repetition), built from a seed so
// each test knows exactly what it planted.
#include <string>
#include <vector>

#include "trainer/core/random.hpp"

namespace kiln::curate::testing {

inline const std::vector<std::string>& vocabulary() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> out;
    const char* stems[] = {"river", "garden", "market", "lantern", "harbor", "meadow", "window", "teacher", "village",
                           "engine", "letter", "forest", "bridge", "kitchen", "station", "picture", "morning", "journey",
                           "number", "question", "answer", "library", "mountain", "painter", "doctor", "farmer",
                           "carpet", "candle", "silver", "yellow", "quiet", "bright", "ancient", "narrow", "gentle"};
    const char* suffixes[] = {"", "s", "ing", "ed", "er", "ly", "ness", "ful"};
    for (const char* stem : stems) {
      for (const char* suffix : suffixes) out.push_back(std::string(stem) + suffix);
    }
    return out;
  }();
  return words;
}

// One sentence of 8-14 words with stop words, capitalised, ending in '.'.
inline std::string sentence(Rng& rng) {
  static const std::vector<std::string> glue = {"the", "of", "and", "to", "with", "that", "have", "be"};
  std::string out;
  const int words = rng.between(8, 14);
  for (int i = 0; i < words; ++i) {
    if (!out.empty()) out.push_back(' ');
    out += (i % 3 == 1) ? rng.pick(glue) : rng.pick(vocabulary());
  }
  out[0] = static_cast<char>(out[0] - 32);
  return out + ".";
}

inline std::string sentence_from(std::uint64_t seed) {
  Rng rng(seed);
  return sentence(rng);
}

// A document of `lines` lines of two sentences each (well over 50 words).
inline std::string prose(std::uint64_t seed, int lines = 6) {
  Rng rng(seed * 7919 + 13);
  std::string text;
  for (int line = 0; line < lines; ++line) {
    if (!text.empty()) text.push_back('\n');
    text += sentence(rng) + " " + sentence(rng);
  }
  return text;
}

}  // namespace kiln::curate::testing
