#include "trainer/export/gguf_tokenizer.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "data/chat/chat_template.hpp"
#include "data/tokenizer/pre_tokenizer.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "trainer/core/error.hpp"
#include "trainer/export/hf_config.hpp"
#include "trainer/export/hf_tokenizer_files.hpp"

namespace kiln::interop {

namespace {

using nlohmann::json;

bool is_byte_level(const json& step) { return step.is_object() && step.value("type", "") == "ByteLevel"; }

// llama.cpp names the pre-tokenizer regex it must run; kiln's two patterns have names there.
std::string pre_tokenizer_name(const json& tokenizer, const std::string& source) {
  const json& pre = tokenizer.contains("pre_tokenizer") ? tokenizer["pre_tokenizer"] : json();
  if (is_byte_level(pre) && pre.value("use_regex", true)) return "gpt-2";
  if (pre.is_object() && pre.value("type", "") == "Sequence" && pre.contains("pretokenizers")) {
    const json& steps = pre["pretokenizers"];
    // Only Llama-3's own Split (Isolated, not inverted): other behaviors cut text differently.
    const bool llama3_split = steps.size() == 2 && steps[0].value("type", "") == "Split" &&
                              steps[0].value("behavior", "") == "Isolated" && !steps[0].value("invert", true);
    if (llama3_split && is_byte_level(steps[1])) {
      const json& pattern = steps[0]["pattern"];
      if (pattern.is_object() && pattern.value("Regex", "") == tok::kLlama3Pattern) return "llama-bpe";
    }
  }
  fail("{}: pre_tokenizer is neither GPT-2's ByteLevel nor Llama-3's Split + ByteLevel; llama.cpp would split text "
       "differently, so kiln does not export it to GGUF",
       source);
}

std::vector<GgufScalar> merges_of(const json& model, const std::string& source) {
  std::vector<GgufScalar> merges;
  if (!model.contains("merges") || !model["merges"].is_array()) fail("{}: model.merges is missing", source);
  for (const auto& merge : model["merges"]) {
    if (merge.is_string()) {
      merges.emplace_back(merge.get<std::string>());
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      merges.emplace_back(merge[0].get<std::string>() + " " + merge[1].get<std::string>());
    } else {
      fail("{}: model.merges holds {}, not a \"left right\" string or a pair", source, merge.dump());
    }
  }
  return merges;
}

struct TokenTable {
  std::vector<GgufScalar> tokens;
  std::vector<GgufScalar> types;
};

TokenTable token_table(const json& tokenizer, std::int64_t model_vocab_size, const std::string& source) {
  const auto size = static_cast<std::size_t>(model_vocab_size);
  std::vector<std::string> texts(size);
  std::vector<std::int32_t> types(size, kGgufTokenUnused);
  const auto place = [&](std::uint64_t id, const std::string& text, std::int32_t type) {
    if (id >= size) fail("{}: token '{}' has id {} beyond the model's vocab_size {}", source, text, id, size);
    texts[id] = text;
    types[id] = type;
  };
  const json& model = tokenizer["model"];
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail("{}: model.vocab is missing", source);
  for (const auto& [text, id] : model["vocab"].items()) place(id.get<std::uint64_t>(), text, kGgufTokenNormal);
  if (tokenizer.contains("added_tokens")) {
    for (const auto& added : tokenizer["added_tokens"]) {
      place(added["id"].get<std::uint64_t>(), added["content"].get<std::string>(),
            added.value("special", true) ? kGgufTokenControl : kGgufTokenUserDefined);
    }
  }
  TokenTable table;
  for (std::size_t id = 0; id < size; ++id) {
    table.tokens.emplace_back(types[id] == kGgufTokenUnused ? fmt::format("[PAD{}]", id) : texts[id]);
    table.types.emplace_back(types[id]);
  }
  return table;
}

}  // namespace

std::vector<std::pair<std::string, GgufValue>> gguf_tokenizer_metadata(const std::filesystem::path& tokenizer_json,
                                                                       std::int64_t model_vocab_size,
                                                                       const std::string& chat_template) {
  const std::string source = tokenizer_json.string();
  const json tokenizer = read_json_file(tokenizer_json);
  if (!tokenizer.contains("model") || tokenizer["model"].value("type", "BPE") != "BPE") {
    fail("{}: model.type must be BPE for a GGUF export", source);
  }
  const auto loaded = tok::Tokenizer::load(tokenizer_json);
  const auto special = special_tokens_of(loaded, chat_template);
  TokenTable table = token_table(tokenizer, model_vocab_size, source);

  std::vector<std::pair<std::string, GgufValue>> keys;
  keys.emplace_back("tokenizer.ggml.model", GgufValue::of(std::string("gpt2")));
  keys.emplace_back("tokenizer.ggml.pre", GgufValue::of(pre_tokenizer_name(tokenizer, source)));
  keys.emplace_back("tokenizer.ggml.tokens", GgufValue::array_of(GgufType::string, std::move(table.tokens)));
  keys.emplace_back("tokenizer.ggml.token_type", GgufValue::array_of(GgufType::int32, std::move(table.types)));
  keys.emplace_back("tokenizer.ggml.merges", GgufValue::array_of(GgufType::string, merges_of(tokenizer["model"], source)));
  if (special.bos) keys.emplace_back("tokenizer.ggml.bos_token_id", GgufValue::of(static_cast<std::uint32_t>(*special.bos)));
  if (special.eos) keys.emplace_back("tokenizer.ggml.eos_token_id", GgufValue::of(static_cast<std::uint32_t>(*special.eos)));
  keys.emplace_back("tokenizer.ggml.add_bos_token", GgufValue::of(special.adds_bos));
  if (!chat_template.empty()) {
    keys.emplace_back("tokenizer.chat_template", GgufValue::of(chat::find_chat_template(chat_template).jinja));
  }
  return keys;
}

}  // namespace kiln::interop
