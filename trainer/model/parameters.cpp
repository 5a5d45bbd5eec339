#include "trainer/model/parameters.hpp"

#include <fmt/format.h>

#include "trainer/core/error.hpp"

namespace kiln::model {

std::string_view tp_split_name(TpSplit split) {
  switch (split) {
    case TpSplit::replicated:
      return "replicated";
    case TpSplit::column:
      return "column";
    case TpSplit::row:
      return "row";
    case TpSplit::vocab:
      return "vocab";
  }
  return "?";
}

Shape ParameterInfo::export_shape() const {
  Shape result = shape;
  if (result.rank() > 0) result[0] = valid_rows;
  return result;
}

namespace {

ParameterInfo matrix(std::string name, std::int64_t rows, std::int64_t cols, TpSplit split,
                     InitKind init = InitKind::normal) {
  return {std::move(name), Shape{rows, cols}, rows, split, true, init, 0, {}};
}

ParameterInfo vector(std::string name, std::int64_t length, TpSplit split, InitKind init) {
  return {std::move(name), Shape{length}, length, split, false, init, 0, {}};
}

// Norm weight (ones) and, for LayerNorm, its bias (zeros).
std::vector<ParameterInfo> norm(const ModelConfig& c, const std::string& prefix) {
  std::vector<ParameterInfo> params{
      vector(prefix + ".weight", c.d_model, TpSplit::replicated, InitKind::ones)};
  if (c.norm() == NormKind::layernorm)
    params.push_back(vector(prefix + ".bias", c.d_model, TpSplit::replicated, InitKind::zeros));
  return params;
}

// A vocabulary-sized table: Vp stored rows, vocab_size of them real.
ParameterInfo vocab_table(std::string name, const ModelConfig& c) {
  ParameterInfo info = matrix(std::move(name), c.padded_vocab(), c.d_model, TpSplit::vocab);
  info.valid_rows = c.vocab_size;
  return info;
}

}  // namespace

ParameterStore::ParameterStore(const ModelConfig& config, DType dtype) : dtype_(dtype) {
  if (dtype != DType::F32 && dtype != DType::F64)
    fail("ParameterStore: parameters are f32 (training) or f64 (gradient checks), not {}",
         dtype_name(dtype));
  const ModelConfig c = config.resolved();
  add(vocab_table("embed.weight", c));
  if (c.learned_positions())
    add(matrix("pos_embed.weight", c.max_seq_len, c.d_model, TpSplit::replicated));
  for (std::int64_t layer = 0; layer < c.n_layers; ++layer) register_block(c, layer);
  for (ParameterInfo& info : norm(c, "final_norm")) add(std::move(info));
  if (!c.tie_embeddings) add(vocab_table("lm_head.weight", c));

  const std::size_t bytes = static_cast<std::size_t>(numel_) * dtype_size(dtype_);
  values_ = HostBuffer(bytes);
  grads_ = HostBuffer(bytes);
}

void ParameterStore::register_block(const ModelConfig& c, std::int64_t layer) {
  const std::string p = fmt::format("blocks.{}.", layer);
  const std::int64_t C = c.d_model;
  for (ParameterInfo& info : norm(c, p + "attn_norm")) add(std::move(info));

  // q|k|v weights, then q|k|v biases: each trio is one contiguous fused tensor.
  const std::size_t qkv_weight = infos_.size();
  add(matrix(p + "attn.q.weight", c.q_dim(), C, TpSplit::column));
  add(matrix(p + "attn.k.weight", c.kv_dim(), C, TpSplit::column));
  add(matrix(p + "attn.v.weight", c.kv_dim(), C, TpSplit::column));
  add_fused(p + "attn.qkv.weight", qkv_weight, 3);
  if (c.has_biases()) {
    const std::size_t qkv_bias = infos_.size();
    add(vector(p + "attn.q.bias", c.q_dim(), TpSplit::column, InitKind::zeros));
    add(vector(p + "attn.k.bias", c.kv_dim(), TpSplit::column, InitKind::zeros));
    add(vector(p + "attn.v.bias", c.kv_dim(), TpSplit::column, InitKind::zeros));
    add_fused(p + "attn.qkv.bias", qkv_bias, 3);
  }
  add(matrix(p + "attn.out.weight", C, c.q_dim(), TpSplit::row, InitKind::normal_residual));
  if (c.has_biases()) add(vector(p + "attn.out.bias", C, TpSplit::replicated, InitKind::zeros));

  for (ParameterInfo& info : norm(c, p + "mlp_norm")) add(std::move(info));
  if (c.mlp() == MlpKind::swiglu) {
    const std::size_t gate_up = infos_.size();
    add(matrix(p + "mlp.gate.weight", c.d_ff, C, TpSplit::column));
    add(matrix(p + "mlp.up.weight", c.d_ff, C, TpSplit::column));
    add_fused(p + "mlp.gate_up.weight", gate_up, 2);
  } else {
    add(matrix(p + "mlp.up.weight", c.d_ff, C, TpSplit::column));
  }
  if (c.has_biases()) add(vector(p + "mlp.up.bias", c.d_ff, TpSplit::column, InitKind::zeros));
  add(matrix(p + "mlp.down.weight", C, c.d_ff, TpSplit::row, InitKind::normal_residual));
  if (c.has_biases()) add(vector(p + "mlp.down.bias", C, TpSplit::replicated, InitKind::zeros));
}

void ParameterStore::add(ParameterInfo info) {
  if (find(info.name)) fail("ParameterStore: parameter '{}' registered twice", info.name);
  info.offset = numel_;
  numel_ += info.numel();
  by_name_.emplace(info.name, infos_.size());
  infos_.push_back(std::move(info));
}

void ParameterStore::add_fused(std::string name, std::size_t first, std::size_t count) {
  std::int64_t rows = 0;
  for (std::size_t i = first; i < first + count; ++i) {
    infos_[i].fused_into = name;
    rows += infos_[i].shape[0];
  }
  const ParameterInfo& head = infos_[first];
  Shape shape = head.shape;
  shape[0] = rows;
  fused_.push_back({std::move(name), shape, head.offset});
}

std::optional<std::size_t> ParameterStore::find(std::string_view name) const {
  const auto found = by_name_.find(name);
  if (found == by_name_.end()) return std::nullopt;
  return found->second;
}

std::size_t ParameterStore::index(std::string_view name) const {
  if (const auto found = find(name)) return *found;
  fail("model: no parameter named '{}' ({} parameters, from '{}' to '{}')", name, infos_.size(),
       infos_.front().name, infos_.back().name);
}

Tensor ParameterStore::view(const HostBuffer& buffer, std::int64_t offset,
                            const Shape& shape) const {
  return buffer.view(dtype_, shape, static_cast<std::size_t>(offset) * dtype_size(dtype_));
}

Tensor ParameterStore::value(std::size_t i) const {
  return view(values_, infos_.at(i).offset, infos_.at(i).shape);
}

Tensor ParameterStore::grad(std::size_t i) const {
  return view(grads_, infos_.at(i).offset, infos_.at(i).shape);
}

const FusedInfo& ParameterStore::fused_info(std::string_view name) const {
  for (const FusedInfo& fused : fused_)
    if (fused.name == name) return fused;
  fail("model: no fused parameter named '{}'", name);
}

Tensor ParameterStore::fused_value(std::string_view name) const {
  const FusedInfo& fused = fused_info(name);
  return view(values_, fused.offset, fused.shape);
}

Tensor ParameterStore::fused_grad(std::string_view name) const {
  const FusedInfo& fused = fused_info(name);
  return view(grads_, fused.offset, fused.shape);
}

Tensor ParameterStore::values() const { return view(values_, 0, Shape{numel_}); }
Tensor ParameterStore::grads() const { return view(grads_, 0, Shape{numel_}); }
void ParameterStore::zero_grads() const { ops::zero(grads()); }

}  // namespace kiln::model
