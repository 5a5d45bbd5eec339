#pragma once
// `kiln import --from hf DIR --out PATH`: a Hugging Face GPT-2 or Llama directory (config.json,
// model.safetensors or shards with model.safetensors.index.json, tokenizer.json) becomes a
// normal kiln checkpoint, PATH/checkpoints/step_00000000/, that `kiln eval`, `generate`,
// `score`, `export` and a recipe's `model.init_from: PATH` load like any other.
//
// Layouts (one name map per family, trainer/model/name_map.hpp): GPT-2's Conv1D weights are
// [in, out] and transposed; its fused c_attn is split into q, k and v; its head is tied to
// wte; the attention-mask buffers (attn.bias, attn.masked_bias) are ignored; keys with and
// without the "transformer." prefix are accepted. Llama's q/k need no permutation (HF's
// rotate_half is kiln's RoPE convention); GQA, tied or untied heads, rope_theta and llama3
// scaling come from config.json. Each tensor is read, checked against the shape config.json
// implies, converted to float32 and written before the next is read.
#include <filesystem>
#include <string>

#include "trainer/config/recipe.hpp"

namespace kiln::interop {

struct ImportResult {
  std::filesystem::path step_dir;
  config::ModelConfig model;
  std::size_t tensors = 0;
  bool tokenizer_carried = false;
};

// Throws kiln::Error naming the file, tensor or key when the directory is not a checkpoint
// kiln can reproduce exactly.
ImportResult import_hf_checkpoint(const std::filesystem::path& hf_dir, const std::filesystem::path& out_dir);

// The recipe recorded in an imported (or exported-from) checkpoint: the model, the tokenizer,
// and placeholders for training fields (a fine-tuning recipe supplies its own).
config::Recipe recipe_for_model(const config::ModelConfig& model, const std::filesystem::path& tokenizer,
                                const std::filesystem::path& run_dir);

}  // namespace kiln::interop
