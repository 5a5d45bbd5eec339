#include "data/corpus/passkey_task.hpp"

#include <fmt/format.h>

#include <vector>

#include "data/corpus/filler_text.hpp"

namespace kiln::data {

namespace {

constexpr const char* kInstruction =
    "There is a pass key hidden in the text below. Find it and remember it: you will be asked for it at the end.\n\n";
constexpr const char* kQuestion = "\n\nWhat is the pass key? The pass key is";

int draw_passkey(Rng& rng, bool held_out) {
  while (true) {
    const int key = rng.between(10000, 99999);
    if (is_held_out_passkey(key) == held_out) return key;
  }
}

std::string key_sentence(int key) { return fmt::format("The pass key is {}. Remember it.", key); }

}  // namespace

bool is_held_out_passkey(int key) {
  return mix_seed(0x706173736b6579ULL, static_cast<std::uint64_t>(key)) % 8 == 0;
}

PasskeyText make_passkey_text(Rng& rng, std::size_t chars, bool held_out) {
  PasskeyText text;
  text.key = draw_passkey(rng, held_out);
  text.answer = fmt::format(" {}", text.key);
  const std::string key = key_sentence(text.key);
  const std::size_t fixed = std::string(kInstruction).size() + key.size() + std::string(kQuestion).size();
  std::vector<std::string> sentences = filler_sentences(rng, chars > fixed ? chars - fixed : 0);
  const std::size_t at = rng.below(sentences.size() + 1);
  text.depth = sentences.empty() ? 0.0 : static_cast<double>(at) / static_cast<double>(sentences.size());
  sentences.insert(sentences.begin() + static_cast<std::ptrdiff_t>(at), key);
  text.prompt = kInstruction + paragraphs_of(sentences, rng) + kQuestion;
  return text;
}

}  // namespace kiln::data
