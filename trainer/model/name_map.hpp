#pragma once
// kiln canonical names <-> Hugging Face transformers state-dict names, one table per family
// (DESIGN.md §9: layouts handled in one name/layout map per family). Import, export and the
// golden tests read it; nothing else should spell an HF name.
//
// gpt2 (GPT2LMHeadModel; h = transformer.h.i):
//   embed.weight          transformer.wte.weight     pos_embed.weight  transformer.wpe.weight
//   blocks.i.attn_norm.*  h.ln_1.*                   blocks.i.mlp_norm.*  h.ln_2.*
//   blocks.i.attn.{q,k,v}.weight / .bias   h.attn.c_attn.weight / .bias, a third each (T)
//   blocks.i.attn.out.*   h.attn.c_proj.* (T)        blocks.i.mlp.up.*    h.mlp.c_fc.* (T)
//   blocks.i.mlp.down.*   h.mlp.c_proj.* (T)         final_norm.*         transformer.ln_f.*
//   (no lm_head: tied to wte)
// llama (LlamaForCausalLM; l = model.layers.i):
//   embed.weight          model.embed_tokens.weight  lm_head.weight     lm_head.weight (untied)
//   blocks.i.attn_norm.weight  l.input_layernorm.weight
//   blocks.i.attn.{q,k,v,out}.weight  l.self_attn.{q,k,v,o}_proj.weight
//   blocks.i.mlp_norm.weight   l.post_attention_layernorm.weight
//   blocks.i.mlp.{gate,up,down}.weight  l.mlp.{gate,up,down}_proj.weight
//   final_norm.weight     model.norm.weight
// (T): GPT-2's Conv1D stores weights [in, out]; kiln (like nn.Linear) stores [out, in].
// Llama q/k need no permutation: HF's rotate_half convention is kiln's RoPE. (GGUF's
// interleaved pairs are the exporter's business.) Original OpenAI gpt2 checkpoints lack the
// "transformer." prefix; importers should accept both.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trainer/model/model_config.hpp"

namespace kiln::model {

struct HfTensorMapping {
  std::string kiln_name;
  std::string hf_name;
  bool transpose = false;  // HF tensor is [in, out] (GPT-2 Conv1D): kiln = slice, then T
  // Part of a fused HF tensor: the kiln tensor is HF's columns (weight, before transposing)
  // or elements (bias) [slice_begin, slice_begin + slice_length) of the output dimension.
  std::optional<std::int64_t> slice_begin;
  std::int64_t slice_length = 0;
};

// Every kiln parameter of this config exactly once (shared HF tensors appear several times).
std::vector<HfTensorMapping> hf_name_map(const ModelConfig& config);

}  // namespace kiln::model
