#include "trainer/export/hf_config.hpp"

#include <fmt/format.h>

#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"

namespace kiln::interop {

namespace {

using nlohmann::json;

// Typed access to one config object, with messages naming the file and the key.
class ConfigKeys {
 public:
  ConfigKeys(const json& object, std::string_view source, std::string prefix = "")
      : object_(object), source_(source), prefix_(std::move(prefix)) {}

  bool has(const char* key) const { return object_.contains(key) && !object_[key].is_null(); }

  const json& required(const char* key) const {
    if (!has(key)) fail("{}: missing key \"{}{}\"", source_, prefix_, key);
    return object_[key];
  }

  // A whole number in [1, max]; max keeps every size kiln derives from config.json (and the
  // memory it asks for) bounded before the weights are even looked at.
  std::int64_t integer(const char* key, std::int64_t max) const {
    const json& value = required(key);
    // Unsigned values above INT64_MAX would wrap when read as signed: test the sign first.
    const bool positive = value.is_number_unsigned() ? value.get<std::uint64_t>() > 0
                                                      : value.is_number_integer() && value.get<std::int64_t>() > 0;
    if (!positive) {
      fail("{}: key \"{}{}\" must be a positive integer, found {}", source_, prefix_, key, value.dump());
    }
    if (value.get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
      fail("{}: key \"{}{}\" = {} is out of range: kiln accepts at most {}", source_, prefix_, key, value.dump(), max);
    }
    return value.get<std::int64_t>();
  }
  std::int64_t integer_or(const char* key, std::int64_t fallback, std::int64_t max) const {
    return has(key) ? integer(key, max) : fallback;
  }

  double number(const char* key) const {
    const json& value = required(key);
    if (!value.is_number()) fail("{}: key \"{}{}\" must be a number, found {}", source_, prefix_, key, value.dump());
    return value.get<double>();
  }
  double number_or(const char* key, double fallback) const { return has(key) ? number(key) : fallback; }

  bool boolean_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& value = object_[key];
    if (!value.is_boolean()) fail("{}: key \"{}{}\" must be true or false, found {}", source_, prefix_, key, value.dump());
    return value.get<bool>();
  }

  std::string text_or(const char* key, std::string fallback) const {
    if (!has(key)) return fallback;
    const json& value = object_[key];
    if (!value.is_string()) fail("{}: key \"{}{}\" must be a string, found {}", source_, prefix_, key, value.dump());
    return value.get<std::string>();
  }

  // Keys whose other values kiln cannot reproduce.
  void refuse_unless(const char* key, bool allowed, std::string_view why) const {
    if (has(key) && !allowed) fail("{}: key \"{}{}\" = {} is not supported: {}", source_, prefix_, key, object_[key].dump(), why);
  }

 private:
  const json& object_;
  std::string_view source_;
  std::string prefix_;
};

// Upper bounds on config.json's sizes, far above any released model (Llama 3.1 405B: 126
// layers, hidden 16384, intermediate 53248, vocab 128256; Gemma: vocab 256000) and low enough
// that no product of them overflows. The weights are then checked against what these imply.
constexpr std::int64_t kMaxVocab = std::int64_t{1} << 24;
constexpr std::int64_t kMaxWidth = std::int64_t{1} << 20;  // hidden, intermediate, head counts
constexpr std::int64_t kMaxLayers = 10'000;
constexpr std::int64_t kMaxPositions = std::int64_t{1} << 24;

int to_int(std::int64_t value) { return static_cast<int>(value); }  // every bound above fits an int

config::ModelConfig gpt2_from_hf(const json& hf, std::string_view source) {
  const ConfigKeys keys(hf, source);
  const std::string activation = keys.text_or("activation_function", "gelu_new");
  keys.refuse_unless("activation_function", activation == "gelu_new" || activation == "gelu_pytorch_tanh",
                     "kiln's gpt2 uses GELU with the tanh approximation (gelu_new)");
  keys.refuse_unless("scale_attn_by_inverse_layer_idx", !keys.boolean_or("scale_attn_by_inverse_layer_idx", false),
                     "kiln scales attention by 1/sqrt(head_dim) only");
  keys.refuse_unless("scale_attn_weights", keys.boolean_or("scale_attn_weights", true),
                     "kiln scales attention by 1/sqrt(head_dim)");
  keys.refuse_unless("add_cross_attention", !keys.boolean_or("add_cross_attention", false),
                     "kiln models are decoder-only");
  config::ModelConfig model;
  model.family = config::ModelFamily::gpt2;
  model.vocab_size = keys.integer("vocab_size", kMaxVocab);
  model.d_model = to_int(keys.integer("n_embd", kMaxWidth));
  model.n_layers = to_int(keys.integer("n_layer", kMaxLayers));
  model.n_heads = to_int(keys.integer("n_head", kMaxWidth));
  model.n_kv_heads = model.n_heads;
  model.d_ff = to_int(keys.integer_or("n_inner", 4 * std::int64_t{model.d_model}, kMaxWidth));
  const char* positions = keys.has("n_positions") ? "n_positions" : "n_ctx";
  model.max_seq_len = to_int(keys.integer(positions, kMaxPositions));
  model.norm_eps = keys.number_or("layer_norm_epsilon", 1e-5);
  model.tie_embeddings = keys.boolean_or("tie_word_embeddings", true);
  return model;
}

// rope_scaling (transformers 4: "type" or "rope_type") or rope_parameters (transformers 5,
// which also carries rope_theta).
void llama_rope_from_hf(const json& hf, std::string_view source, config::ModelConfig& model) {
  const ConfigKeys keys(hf, source);
  model.rope_theta = keys.number_or("rope_theta", 10000.0);
  const char* section = keys.has("rope_parameters") ? "rope_parameters" : "rope_scaling";
  if (!keys.has(section)) return;
  const json& scaling = hf[section];
  if (!scaling.is_object()) fail("{}: key \"{}\" must be an object or null, found {}", source, section, scaling.dump());
  const ConfigKeys rope(scaling, source, std::string(section) + ".");
  if (rope.has("rope_theta")) model.rope_theta = rope.number("rope_theta");
  const char* type_key = rope.has("rope_type") ? "rope_type" : "type";
  const std::string type = rope.text_or(type_key, "default");
  if (type == "default") return;
  if (type != "llama3") {
    fail("{}: key \"{}.{}\" = \"{}\" is not supported: kiln implements llama3 RoPE scaling (or none)", source,
         section, type_key, type);
  }
  model.rope_scaling.type = config::RopeScalingType::llama3;
  model.rope_scaling.factor = rope.number("factor");
  model.rope_scaling.low_freq_factor = rope.number("low_freq_factor");
  model.rope_scaling.high_freq_factor = rope.number("high_freq_factor");
  model.rope_scaling.original_max_position_embeddings =
      to_int(rope.integer("original_max_position_embeddings", kMaxPositions));
}

config::ModelConfig llama_from_hf(const json& hf, std::string_view source) {
  const ConfigKeys keys(hf, source);
  keys.refuse_unless("hidden_act", keys.text_or("hidden_act", "silu") == "silu", "kiln's llama MLP is SwiGLU (silu)");
  keys.refuse_unless("attention_bias", !keys.boolean_or("attention_bias", false), "kiln's llama has no biases");
  keys.refuse_unless("mlp_bias", !keys.boolean_or("mlp_bias", false), "kiln's llama has no biases");
  keys.refuse_unless("pretraining_tp", keys.integer_or("pretraining_tp", 1, kMaxWidth) == 1, "only pretraining_tp = 1");
  config::ModelConfig model;
  model.family = config::ModelFamily::llama;
  model.vocab_size = keys.integer("vocab_size", kMaxVocab);
  model.d_model = to_int(keys.integer("hidden_size", kMaxWidth));
  model.n_layers = to_int(keys.integer("num_hidden_layers", kMaxLayers));
  model.n_heads = to_int(keys.integer("num_attention_heads", kMaxWidth));
  model.n_kv_heads = to_int(keys.integer_or("num_key_value_heads", model.n_heads, kMaxWidth));
  model.d_ff = to_int(keys.integer("intermediate_size", kMaxWidth));
  model.max_seq_len = to_int(keys.integer("max_position_embeddings", kMaxPositions));
  model.norm_eps = keys.number_or("rms_norm_eps", 1e-6);
  model.tie_embeddings = keys.boolean_or("tie_word_embeddings", false);
  if (model.d_model % model.n_heads != 0) {
    fail("{}: hidden_size = {} is not a multiple of num_attention_heads = {}", source, model.d_model, model.n_heads);
  }
  const std::int64_t head_dim = keys.integer_or("head_dim", model.d_model / model.n_heads, kMaxWidth);
  keys.refuse_unless("head_dim", head_dim == model.d_model / model.n_heads,
                     fmt::format("kiln's head_dim is hidden_size / num_attention_heads = {}", model.d_model / model.n_heads));
  llama_rope_from_hf(hf, source, model);
  return model;
}

}  // namespace

config::ModelConfig model_config_from_hf(const json& hf_config, std::string_view source) {
  if (!hf_config.is_object()) fail("{}: expected a JSON object", source);
  const ConfigKeys keys(hf_config, source);
  const std::string type = keys.has("model_type") ? keys.text_or("model_type", "") : "";
  if (type.empty()) fail("{}: missing key \"model_type\" (kiln imports \"gpt2\" and \"llama\")", source);
  if (type == "gpt2") return gpt2_from_hf(hf_config, source);
  if (type == "llama") return llama_from_hf(hf_config, source);
  fail("{}: model_type \"{}\" is not supported; kiln imports \"gpt2\" and \"llama\"", source, type);
}

namespace {

void add_special_ids(nlohmann::ordered_json& config, const HfSpecialIds& ids) {
  config["bos_token_id"] = ids.bos ? nlohmann::ordered_json(*ids.bos) : nlohmann::ordered_json(nullptr);
  config["eos_token_id"] = ids.eos ? nlohmann::ordered_json(*ids.eos) : nlohmann::ordered_json(nullptr);
}

nlohmann::ordered_json gpt2_config(const config::ModelConfig& m) {
  nlohmann::ordered_json config;
  config["architectures"] = {"GPT2LMHeadModel"};
  config["model_type"] = "gpt2";
  config["vocab_size"] = m.vocab_size;
  config["n_embd"] = m.d_model;
  config["n_layer"] = m.n_layers;
  config["n_head"] = m.n_heads;
  config["n_inner"] = m.d_ff;
  config["n_positions"] = m.max_seq_len;
  config["n_ctx"] = m.max_seq_len;
  config["layer_norm_epsilon"] = m.norm_eps;
  config["activation_function"] = "gelu_new";
  config["resid_pdrop"] = 0.0;
  config["embd_pdrop"] = 0.0;
  config["attn_pdrop"] = 0.0;
  config["scale_attn_weights"] = true;
  config["tie_word_embeddings"] = m.tie_embeddings;
  return config;
}

nlohmann::ordered_json llama_config(const config::ModelConfig& m) {
  nlohmann::ordered_json config;
  config["architectures"] = {"LlamaForCausalLM"};
  config["model_type"] = "llama";
  config["vocab_size"] = m.vocab_size;
  config["hidden_size"] = m.d_model;
  config["intermediate_size"] = m.d_ff;
  config["num_hidden_layers"] = m.n_layers;
  config["num_attention_heads"] = m.n_heads;
  config["num_key_value_heads"] = m.n_kv_heads;
  config["head_dim"] = m.head_dim();
  config["max_position_embeddings"] = m.max_seq_len;
  config["rms_norm_eps"] = m.norm_eps;
  config["hidden_act"] = "silu";
  config["attention_bias"] = false;
  config["mlp_bias"] = false;
  config["rope_theta"] = m.rope_theta;
  if (m.rope_scaling.type == config::RopeScalingType::llama3) {
    config["rope_scaling"] = {{"rope_type", "llama3"},
                              {"factor", m.rope_scaling.factor},
                              {"low_freq_factor", m.rope_scaling.low_freq_factor},
                              {"high_freq_factor", m.rope_scaling.high_freq_factor},
                              {"original_max_position_embeddings", m.rope_scaling.original_max_position_embeddings}};
  } else {
    config["rope_scaling"] = nullptr;
  }
  config["tie_word_embeddings"] = m.tie_embeddings;
  return config;
}

}  // namespace

nlohmann::ordered_json hf_config_from_model(const config::ModelConfig& model, const HfSpecialIds& ids,
                                            std::string_view torch_dtype) {
  auto config = model.family == config::ModelFamily::gpt2 ? gpt2_config(model) : llama_config(model);
  add_special_ids(config, ids);
  config["torch_dtype"] = torch_dtype;
  config["use_cache"] = true;
  return config;
}

json read_json_file(const std::filesystem::path& path, std::uint64_t max_bytes) {
  const std::string text = read_text_file(path, "JSON file", max_bytes);
  try {
    return json::parse(text);
  } catch (const json::exception& error) {  // parse_error, and out_of_range for numbers like 1e999
    fail("{}: not valid JSON: {}", path.string(), error.what());
  }
}

}  // namespace kiln::interop
