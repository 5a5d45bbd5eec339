#include "trainer/model/name_map.hpp"

#include <fmt/format.h>

namespace kiln::model {

namespace {

void add_plain(std::vector<HfTensorMapping>& map, std::string kiln, std::string hf,
               bool transpose = false) {
  map.push_back({std::move(kiln), std::move(hf), transpose, std::nullopt, 0});
}

void add_gpt2_block(std::vector<HfTensorMapping>& map, const ModelConfig& c, std::int64_t i) {
  const std::string k = fmt::format("blocks.{}.", i);
  const std::string h = fmt::format("transformer.h.{}.", i);
  for (const char* field : {"weight", "bias"}) {
    add_plain(map, k + "attn_norm." + field, h + "ln_1." + field);
    add_plain(map, k + "mlp_norm." + field, h + "ln_2." + field);
  }
  const char* parts[] = {"q", "k", "v"};
  for (std::int64_t part = 0; part < 3; ++part) {
    for (const char* field : {"weight", "bias"}) {
      map.push_back({k + "attn." + parts[part] + "." + field, h + "attn.c_attn." + field,
                     std::string_view(field) == "weight", part * c.d_model, c.d_model});
    }
  }
  for (const char* field : {"weight", "bias"}) {
    const bool transpose = std::string_view(field) == "weight";
    add_plain(map, k + "attn.out." + field, h + "attn.c_proj." + field, transpose);
    add_plain(map, k + "mlp.up." + field, h + "mlp.c_fc." + field, transpose);
    add_plain(map, k + "mlp.down." + field, h + "mlp.c_proj." + field, transpose);
  }
}

void add_llama_block(std::vector<HfTensorMapping>& map, std::int64_t i) {
  const std::string k = fmt::format("blocks.{}.", i);
  const std::string h = fmt::format("model.layers.{}.", i);
  add_plain(map, k + "attn_norm.weight", h + "input_layernorm.weight");
  add_plain(map, k + "attn.q.weight", h + "self_attn.q_proj.weight");
  add_plain(map, k + "attn.k.weight", h + "self_attn.k_proj.weight");
  add_plain(map, k + "attn.v.weight", h + "self_attn.v_proj.weight");
  add_plain(map, k + "attn.out.weight", h + "self_attn.o_proj.weight");
  add_plain(map, k + "mlp_norm.weight", h + "post_attention_layernorm.weight");
  add_plain(map, k + "mlp.gate.weight", h + "mlp.gate_proj.weight");
  add_plain(map, k + "mlp.up.weight", h + "mlp.up_proj.weight");
  add_plain(map, k + "mlp.down.weight", h + "mlp.down_proj.weight");
}

}  // namespace

std::vector<HfTensorMapping> hf_name_map(const ModelConfig& config) {
  const ModelConfig c = config.resolved();
  std::vector<HfTensorMapping> map;
  if (c.family == Family::gpt2) {
    add_plain(map, "embed.weight", "transformer.wte.weight");
    add_plain(map, "pos_embed.weight", "transformer.wpe.weight");
    for (std::int64_t i = 0; i < c.n_layers; ++i) add_gpt2_block(map, c, i);
    add_plain(map, "final_norm.weight", "transformer.ln_f.weight");
    add_plain(map, "final_norm.bias", "transformer.ln_f.bias");
    if (!c.tie_embeddings) add_plain(map, "lm_head.weight", "lm_head.weight");
    return map;
  }
  add_plain(map, "embed.weight", "model.embed_tokens.weight");
  for (std::int64_t i = 0; i < c.n_layers; ++i) add_llama_block(map, i);
  add_plain(map, "final_norm.weight", "model.norm.weight");
  if (!c.tie_embeddings) add_plain(map, "lm_head.weight", "lm_head.weight");
  return map;
}

}  // namespace kiln::model
