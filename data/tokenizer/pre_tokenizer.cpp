#include "data/tokenizer/pre_tokenizer.hpp"

#include "trainer/core/error.hpp"

namespace kiln::tok {

namespace {

const Regex& gpt2_regex() {
  static const Regex regex = Regex::from_oniguruma(kGpt2Pattern);
  return regex;
}

}  // namespace

PreTokenizerStep PreTokenizerStep::split(std::string pattern, bool is_regex, SplitBehavior behavior, bool invert) {
  PreTokenizerStep step;
  step.kind = Kind::Split;
  step.behavior = behavior;
  step.invert = invert;
  step.regex = is_regex ? Regex::from_oniguruma(pattern) : Regex::from_literal(pattern);
  step.pattern = std::move(pattern);
  step.pattern_is_regex = is_regex;
  return step;
}

PreTokenizerStep PreTokenizerStep::byte_level(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  PreTokenizerStep step;
  step.kind = Kind::ByteLevel;
  step.add_prefix_space = add_prefix_space;
  step.trim_offsets = trim_offsets;
  step.use_regex = use_regex;
  if (use_regex) step.regex = gpt2_regex();
  return step;
}

PreTokenizer::PreTokenizer(std::vector<PreTokenizerStep> steps, bool written_as_sequence)
    : steps_(std::move(steps)), written_as_sequence_(written_as_sequence) {
  for (std::size_t i = 0; i + 1 < steps_.size(); ++i) {
    if (steps_[i].kind == PreTokenizerStep::Kind::ByteLevel) {
      fail("ByteLevel must be the last pre-tokenizer of the Sequence (found at position {} of {})",
           i, steps_.size());
    }
  }
  if (steps_.empty() || steps_.back().kind != PreTokenizerStep::Kind::ByteLevel) {
    fail("the pre-tokenizer must end with ByteLevel (kiln supports byte-level BPE only)");
  }
}

}  // namespace kiln::tok
