#pragma once
// The pre-tokenizer: cuts a piece of text (between added tokens) into the words BPE merges
// within. It is a pipeline of steps, each splitting every piece the previous one produced:
//   Split(pattern, behavior, invert): cuts at the pattern's matches (see split.hpp)
//   ByteLevel(add_prefix_space, use_regex): prepends " " to a piece that does not start with
//     one, then (use_regex) splits it with the GPT-2 pattern. It must be the last step: what
//     follows it sees byte-level text, which kiln does not materialise.
// The byte-level mapping itself is left to the BPE model, which works on raw bytes.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer/regex.hpp"
#include "data/tokenizer/split.hpp"

namespace kiln::tok {

// GPT-2's pattern, which ByteLevel(use_regex=true) splits with.
inline constexpr std::string_view kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
// Llama-3's pattern (a Split step before ByteLevel(use_regex=false)).
inline constexpr std::string_view kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct PreTokenizerStep {
  enum class Kind { Split, ByteLevel };
  Kind kind = Kind::ByteLevel;
  // Split: the pattern as written in tokenizer.json, and whether it was {"Regex": ..} or
  // {"String": ..} (a literal).
  std::string pattern;
  bool pattern_is_regex = true;
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  // ByteLevel options (trim_offsets only affects offsets; kept to write the file back).
  bool add_prefix_space = false;
  bool trim_offsets = true;
  bool use_regex = true;
  // The compiled splitter: Split's pattern, or GPT-2's for ByteLevel with use_regex.
  std::optional<Regex> regex;

  static PreTokenizerStep split(std::string pattern, bool is_regex, SplitBehavior behavior = SplitBehavior::Isolated,
                                bool invert = false);
  static PreTokenizerStep byte_level(bool add_prefix_space, bool trim_offsets, bool use_regex);
};

class PreTokenizer {
 public:
  PreTokenizer() = default;
  // Throws kiln::Error when the steps are not a supported pipeline (no ByteLevel, or one
  // that is not last).
  PreTokenizer(std::vector<PreTokenizerStep> steps, bool written_as_sequence);

  const std::vector<PreTokenizerStep>& steps() const { return steps_; }
  bool written_as_sequence() const { return written_as_sequence_; }

  // Calls emit(word) for each non-empty word of `text` (valid UTF-8), in order. The views
  // live until emit returns.
  template <class Emit>
  void for_each_word(std::string_view text, Emit&& emit) const {
    run(text, 0, emit);
  }

 private:
  template <class Emit>
  void run(std::string_view piece, std::size_t step_index, Emit& emit) const {
    if (piece.empty()) return;
    if (step_index == steps_.size()) {
      emit(piece);
      return;
    }
    const PreTokenizerStep& step = steps_[step_index];
    if (step.kind == PreTokenizerStep::Kind::ByteLevel && step.add_prefix_space && piece.front() != ' ') {
      std::string prefixed(1, ' ');
      prefixed += piece;
      split_and_continue(step, prefixed, step_index, emit);
      return;
    }
    split_and_continue(step, piece, step_index, emit);
  }

  template <class Emit>
  void split_and_continue(const PreTokenizerStep& step, std::string_view piece,
                          std::size_t step_index, Emit& emit) const {
    if (!step.regex) {
      run(piece, step_index + 1, emit);
      return;
    }
    // ByteLevel's GPT-2 split is Split(pattern, Isolated, invert=false).
    split_pieces(*step.regex, piece, step.behavior, step.invert, [&](std::size_t begin, std::size_t end) {
      run(piece.substr(begin, end - begin), step_index + 1, emit);
    });
  }

  std::vector<PreTokenizerStep> steps_;
  bool written_as_sequence_ = false;
};

}  // namespace kiln::tok
