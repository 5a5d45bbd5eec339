#pragma once
// The tokenizer side of an exported model: which ids begin and end text, and the
// tokenizer_config.json / generation_config.json files transformers reads beside
// tokenizer.json (the chat template included, so apply_chat_template prompts a fine-tuned
// model exactly as it was trained).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/tokenizer/tokenizer.hpp"

namespace kiln::interop {

struct SpecialTokens {
  std::optional<tok::TokenId> bos;  // <|begin_of_text|>, <s>, <bos>, or GPT-2's <|endoftext|>
  std::optional<tok::TokenId> eos;  // the tokenizer's end-of-text token
  std::optional<tok::TokenId> end_of_turn;  // the chat template's (generation stops there too)
  bool adds_bos = false;            // the post-processor puts BOS before every encoding
};

// chat_template: a kiln template name or "".
SpecialTokens special_tokens_of(const tok::Tokenizer& tokenizer, const std::string& chat_template);

nlohmann::ordered_json tokenizer_config_json(const tok::Tokenizer& tokenizer, const SpecialTokens& special,
                                             const std::string& chat_template, std::int64_t max_length);
nlohmann::ordered_json generation_config_json(const SpecialTokens& special);

}  // namespace kiln::interop
