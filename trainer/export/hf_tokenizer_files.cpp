#include "trainer/export/hf_tokenizer_files.hpp"

#include "data/chat/chat_template.hpp"

namespace kiln::interop {

namespace {

std::optional<tok::TokenId> first_present(const tok::Tokenizer& tokenizer, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (const auto id = tokenizer.token_to_id(name)) return id;
  }
  return std::nullopt;
}

nlohmann::ordered_json token_text(const tok::Tokenizer& tokenizer, std::optional<tok::TokenId> id) {
  if (!id) return nullptr;
  return tokenizer.id_to_token(*id).value_or("");
}

}  // namespace

SpecialTokens special_tokens_of(const tok::Tokenizer& tokenizer, const std::string& chat_template) {
  SpecialTokens special;
  special.bos = first_present(tokenizer, {"<|begin_of_text|>", "<s>", "<bos>", "<|endoftext|>"});
  special.eos = tokenizer.eos_id();
  if (!chat_template.empty()) {
    special.end_of_turn = tokenizer.token_to_id(chat::find_chat_template(chat_template).end_of_turn);
  }
  const auto empty = tokenizer.encode("", /*add_special_tokens=*/true);
  special.adds_bos = special.bos && !empty.empty() && empty.front() == *special.bos;
  return special;
}

nlohmann::ordered_json tokenizer_config_json(const tok::Tokenizer& tokenizer, const SpecialTokens& special,
                                             const std::string& chat_template, std::int64_t max_length) {
  nlohmann::ordered_json config;
  config["tokenizer_class"] = "PreTrainedTokenizerFast";
  config["bos_token"] = token_text(tokenizer, special.bos);
  config["eos_token"] = token_text(tokenizer, special.eos);
  config["pad_token"] = nullptr;
  config["add_bos_token"] = special.adds_bos;
  config["model_max_length"] = max_length;
  config["clean_up_tokenization_spaces"] = false;
  if (!chat_template.empty()) config["chat_template"] = chat::find_chat_template(chat_template).jinja;
  return config;
}

nlohmann::ordered_json generation_config_json(const SpecialTokens& special) {
  nlohmann::ordered_json config;
  config["bos_token_id"] = special.bos ? nlohmann::ordered_json(*special.bos) : nlohmann::ordered_json(nullptr);
  if (special.end_of_turn && special.eos && *special.end_of_turn != *special.eos) {
    config["eos_token_id"] = {*special.eos, *special.end_of_turn};
  } else {
    config["eos_token_id"] = special.eos ? nlohmann::ordered_json(*special.eos) : nlohmann::ordered_json(nullptr);
  }
  return config;
}

}  // namespace kiln::interop
