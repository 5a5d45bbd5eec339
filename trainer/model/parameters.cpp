#include "trainer/model/parameters.hpp"

#include <fmt/format.h>

#include <algorithm>

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
  Shape result = global_shape;
  if (result.rank() > 0) result[0] = global_valid_rows;
  return result;
}

namespace {

// Entries are described globally (whole tensor); ParameterStore::shard() cuts this rank's part.
ParameterInfo entry(std::string name, Shape shape, TpSplit split, bool decay, InitKind init) {
  ParameterInfo info;
  info.name = std::move(name);
  info.global_valid_rows = shape[0];
  info.global_shape = std::move(shape);
  info.split = split;
  info.weight_decay = decay;
  info.init = init;
  return info;
}

ParameterInfo matrix(std::string name, std::int64_t rows, std::int64_t cols, TpSplit split,
                     InitKind init = InitKind::normal) {
  return entry(std::move(name), Shape{rows, cols}, split, true, init);
}

ParameterInfo vector(std::string name, std::int64_t length, TpSplit split, InitKind init) {
  return entry(std::move(name), Shape{length}, split, false, init);
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
  info.global_valid_rows = c.vocab_size;
  return info;
}

DType gradient_dtype_for(DType values) {
  if (values == DType::BF16) return DType::F32;
  if (values != DType::F32 && values != DType::F64)
    fail("ParameterStore: parameters are f32 (training), bf16 (mixed-precision training) or f64 "
         "(gradient checks), not {}",
         dtype_name(values));
  return values;
}

}  // namespace

ParameterStore::ParameterStore(const ModelConfig& config, DType dtype, const ParallelPlacement& placement,
                               memory::Allocator& allocator)
    : dtype_(dtype),
      grad_dtype_(gradient_dtype_for(dtype)),
      placement_(placement),
      allocator_(&allocator),
      values_(memory::MemoryCategory::parameters, allocator),
      grads_(memory::MemoryCategory::gradients, allocator) {
  const ModelConfig c = config.resolved();
  c.validate_placement(placement);
  layers_ = stage_layers(c.n_layers, placement.pp_size, placement.pp_rank);
  if (placement.first_stage()) {
    add(shard(vocab_table("embed.weight", c)));
    if (c.learned_positions())
      add(shard(matrix("pos_embed.weight", c.max_seq_len, c.d_model, TpSplit::replicated)));
  }
  for (std::int64_t layer = layers_.first; layer < layers_.last; ++layer) register_block(c, layer);
  if (placement.last_stage()) {
    for (ParameterInfo& info : norm(c, "final_norm")) add(shard(std::move(info)));
    if (!c.tie_embeddings) {
      add(shard(vocab_table("lm_head.weight", c)));
    } else if (!placement.first_stage()) {
      ParameterInfo head = shard(vocab_table("embed.weight", c));
      head.tied_copy = true;
      add(std::move(head));
    }
  }

  allocate_storage();
}

void ParameterStore::allocate_storage() {
  memory::ArenaPlan values, grads;
  const memory::ArenaSlot value_slot = values.reserve("parameters", dtype_, Shape{numel_});
  const memory::ArenaSlot grad_slot = grads.reserve("gradients", grad_dtype_, Shape{numel_});
  values_.allocate(std::move(values));
  grads_.allocate(std::move(grads));
  values_flat_ = values_.view(value_slot);
  grads_flat_ = grads_.view(grad_slot);
}

// This tp rank's part of a globally described entry (see the header for the rules).
ParameterInfo ParameterStore::shard(ParameterInfo info) const {
  const std::int64_t tp = placement_.tp_size, rank = placement_.tp_rank;
  info.shape = info.global_shape;
  info.global_offset = info.global_shape;
  for (int d = 0; d < info.global_offset.rank(); ++d) info.global_offset[d] = 0;
  // Rows for column and vocab splits (a bias's only dim), columns for row splits.
  const int dim = info.split == TpSplit::row ? 1 : 0;
  if (info.split != TpSplit::replicated) {
    if (info.global_shape[dim] % tp != 0)
      fail("ParameterStore: {} {} cannot be split {} ways along dim {}", info.name,
           info.global_shape.str(), tp, dim);
    info.shape[dim] = info.global_shape[dim] / tp;
    info.global_offset[dim] = rank * info.shape[dim];
  }
  info.valid_rows = info.shape[0];
  if (info.split == TpSplit::vocab)
    info.valid_rows =
        std::clamp<std::int64_t>(info.global_valid_rows - info.global_offset[0], 0, info.shape[0]);
  return info;
}

void ParameterStore::register_block(const ModelConfig& c, std::int64_t layer) {
  const std::string p = fmt::format("blocks.{}.", layer);
  const std::int64_t C = c.d_model;
  for (ParameterInfo& info : norm(c, p + "attn_norm")) add(shard(std::move(info)));

  // q|k|v weights, then q|k|v biases: each trio is one contiguous fused tensor.
  const std::size_t qkv_weight = infos_.size();
  add(shard(matrix(p + "attn.q.weight", c.q_dim(), C, TpSplit::column)));
  add(shard(matrix(p + "attn.k.weight", c.kv_dim(), C, TpSplit::column)));
  add(shard(matrix(p + "attn.v.weight", c.kv_dim(), C, TpSplit::column)));
  add_fused(p + "attn.qkv.weight", qkv_weight, 3);
  if (c.has_biases()) {
    const std::size_t qkv_bias = infos_.size();
    add(shard(vector(p + "attn.q.bias", c.q_dim(), TpSplit::column, InitKind::zeros)));
    add(shard(vector(p + "attn.k.bias", c.kv_dim(), TpSplit::column, InitKind::zeros)));
    add(shard(vector(p + "attn.v.bias", c.kv_dim(), TpSplit::column, InitKind::zeros)));
    add_fused(p + "attn.qkv.bias", qkv_bias, 3);
  }
  add(shard(matrix(p + "attn.out.weight", C, c.q_dim(), TpSplit::row, InitKind::normal_residual)));
  if (c.has_biases())
    add(shard(vector(p + "attn.out.bias", C, TpSplit::replicated, InitKind::zeros)));

  for (ParameterInfo& info : norm(c, p + "mlp_norm")) add(shard(std::move(info)));
  if (c.mlp() == MlpKind::swiglu) {
    const std::size_t gate_up = infos_.size();
    add(shard(matrix(p + "mlp.gate.weight", c.d_ff, C, TpSplit::column)));
    add(shard(matrix(p + "mlp.up.weight", c.d_ff, C, TpSplit::column)));
    add_fused(p + "mlp.gate_up.weight", gate_up, 2);
  } else {
    add(shard(matrix(p + "mlp.up.weight", c.d_ff, C, TpSplit::column)));
  }
  if (c.has_biases())
    add(shard(vector(p + "mlp.up.bias", c.d_ff, TpSplit::column, InitKind::zeros)));
  add(shard(matrix(p + "mlp.down.weight", C, c.d_ff, TpSplit::row, InitKind::normal_residual)));
  if (c.has_biases())
    add(shard(vector(p + "mlp.down.bias", C, TpSplit::replicated, InitKind::zeros)));
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

Tensor ParameterStore::view(const Tensor& flat, std::int64_t offset, const Shape& shape) {
  return flat.narrow(0, offset, shape.numel()).reshape(shape);
}

Tensor ParameterStore::value(std::size_t i) const {
  return view(values_flat_, infos_.at(i).offset, infos_.at(i).shape);
}

Tensor ParameterStore::grad(std::size_t i) const {
  return view(grads_flat_, infos_.at(i).offset, infos_.at(i).shape);
}

const FusedInfo& ParameterStore::fused_info(std::string_view name) const {
  for (const FusedInfo& fused : fused_)
    if (fused.name == name) return fused;
  fail("model: no fused parameter named '{}'", name);
}

Tensor ParameterStore::fused_value(std::string_view name) const {
  const FusedInfo& fused = fused_info(name);
  return view(values_flat_, fused.offset, fused.shape);
}

Tensor ParameterStore::fused_grad(std::string_view name) const {
  const FusedInfo& fused = fused_info(name);
  return view(grads_flat_, fused.offset, fused.shape);
}

Tensor ParameterStore::values() const { return values_flat_; }
Tensor ParameterStore::grads() const { return grads_flat_; }
void ParameterStore::zero_grads() const { ops::zero(grads()); }

}  // namespace kiln::model
