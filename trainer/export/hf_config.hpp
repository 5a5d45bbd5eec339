#pragma once
// Hugging Face config.json <-> the model part of a kiln recipe, for the two families kiln
// runs (DESIGN.md §9):
//   gpt2  (GPT2LMHeadModel): vocab_size, n_embd, n_layer, n_head, n_inner (null = 4 n_embd),
//         n_positions (old spelling n_ctx), layer_norm_epsilon, activation_function
//         (gelu_new / gelu_pytorch_tanh), tie_word_embeddings (default true)
//   llama (LlamaForCausalLM): vocab_size, hidden_size, intermediate_size, num_hidden_layers,
//         num_attention_heads, num_key_value_heads, head_dim, max_position_embeddings,
//         rms_norm_eps, rope_theta, rope_scaling {rope_type (old spelling "type"): llama3 |
//         default, factor, low_freq_factor, high_freq_factor, original_max_position_embeddings}
//         or transformers 5's rope_parameters {rope_type, rope_theta, ...},
//         tie_word_embeddings (default false), hidden_act silu, no attention/MLP biases
// Anything kiln would compute differently (another activation, biases, per-layer attention
// scaling, head_dim != hidden_size / heads) is refused by key, never silently ignored.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "trainer/config/recipe.hpp"

namespace kiln::interop {

// Throws kiln::Error naming `source` (the config.json path) and the key.
config::ModelConfig model_config_from_hf(const nlohmann::json& hf_config, std::string_view source);

struct HfSpecialIds {
  std::optional<std::int64_t> bos;
  std::optional<std::int64_t> eos;
};

// config.json for a kiln model; torch_dtype is "float32", "float16" or "bfloat16".
nlohmann::ordered_json hf_config_from_model(const config::ModelConfig& model, const HfSpecialIds& ids,
                                            std::string_view torch_dtype);

// config.json and model.safetensors.index.json are a few kilobytes; refuse anything far larger
// before reading it.
inline constexpr std::uint64_t kMaxHfConfigBytes = 16u << 20;

// A JSON file, parsed; kiln::Error naming the file when it is missing, not a regular file,
// larger than max_bytes or malformed (numbers out of range such as 1e999 included).
nlohmann::json read_json_file(const std::filesystem::path& path, std::uint64_t max_bytes = std::uint64_t{1} << 30);

}  // namespace kiln::interop
