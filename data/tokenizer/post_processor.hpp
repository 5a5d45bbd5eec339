#pragma once
// The post-processor: what encode(text, add_special_tokens=true) wraps around the ids.
// Supported: ByteLevel (changes offsets only, never ids), TemplateProcessing for a single
// sequence ($A with special tokens around it, e.g. Llama-3's BOS), and a Sequence of those
// applied in order. The JSON of each template is kept verbatim to write the file back.
#include <vector>

#include <nlohmann/json.hpp>

#include "data/tokenizer/tokenizer.hpp"

namespace kiln::tok {

struct PostProcessorStep {
  enum class Kind { ByteLevel, Template };
  Kind kind = Kind::ByteLevel;
  // ByteLevel options, kept for writing back.
  bool add_prefix_space = true;
  bool trim_offsets = true;
  bool use_regex = true;
  // Template: ids before and after the sequence, and the original JSON object.
  std::vector<TokenId> before;
  std::vector<TokenId> after;
  nlohmann::json template_json;
};

class PostProcessor {
 public:
  PostProcessor() = default;  // null: adds nothing
  PostProcessor(std::vector<PostProcessorStep> steps, bool written_as_sequence);

  bool is_null() const { return steps_.empty() && !written_as_sequence_; }
  const std::vector<PostProcessorStep>& steps() const { return steps_; }
  bool written_as_sequence() const { return written_as_sequence_; }

  // Ids added before and after the encoded text (all steps composed).
  const std::vector<TokenId>& prefix() const { return prefix_; }
  const std::vector<TokenId>& suffix() const { return suffix_; }

 private:
  std::vector<PostProcessorStep> steps_;
  bool written_as_sequence_ = false;
  std::vector<TokenId> prefix_;
  std::vector<TokenId> suffix_;
};

}  // namespace kiln::tok
