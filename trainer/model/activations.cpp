#include "trainer/model/activations.hpp"

#include "kernels/ops.hpp"

namespace kiln::model {

namespace {

// Hands out 64-byte aligned slices of one buffer. Run once without a buffer to measure, then
// again over the allocated buffer: the same sequence of take() calls gives the same layout.
class ArenaCarver {
 public:
  explicit ArenaCarver(const HostBuffer* buffer) : buffer_(buffer) {}

  Tensor take(DType dtype, Shape shape) {
    const std::size_t bytes = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype);
    const std::size_t at = offset_;
    offset_ +=
        (bytes + HostBuffer::kAlignment - 1) / HostBuffer::kAlignment * HostBuffer::kAlignment;
    if (buffer_ == nullptr) return {};
    return buffer_->view(dtype, shape, at);
  }
  std::size_t used() const { return offset_; }

 private:
  const HostBuffer* buffer_;
  std::size_t offset_ = 0;
};

LayerActivations carve_layer(ArenaCarver& arena, const StageDims& c, DType dtype, std::int64_t B,
                             std::int64_t T) {
  const std::int64_t N = B * T;
  const bool layernorm = c.layernorm;
  LayerActivations a;
  a.attn_norm = arena.take(dtype, {B, T, c.d_model});
  if (layernorm) a.attn_mean = arena.take(dtype, {N});
  a.attn_rstd = arena.take(dtype, {N});
  a.qkv = arena.take(dtype, {B, T, c.qkv_dim()});
  a.attn = arena.take(dtype, {B, T, c.q_dim()});
  a.attn_lse = arena.take(dtype, {B, c.q_heads, T});
  a.mid = arena.take(dtype, {B, T, c.d_model});
  a.mlp_norm = arena.take(dtype, {B, T, c.d_model});
  if (layernorm) a.mlp_mean = arena.take(dtype, {N});
  a.mlp_rstd = arena.take(dtype, {N});
  a.mlp_in = arena.take(dtype, {B, T, c.mlp_in_dim()});
  a.mlp_act = arena.take(dtype, {B, T, c.d_ff});
  a.out = arena.take(dtype, {B, T, c.d_model});
  return a;
}

void carve(ArenaCarver& arena, Activations& acts, const StageDims& c, DType dtype) {
  const std::int64_t B = acts.batch, T = acts.seq, N = B * T;
  acts.positions = arena.take(DType::I32, {B, T});
  acts.zero_ids = arena.take(DType::I32, {N});
  acts.embedded = arena.take(dtype, {B, T, c.d_model});
  const std::int64_t kept_layers = acts.for_training ? c.layers : 1;
  acts.layers.clear();
  for (std::int64_t l = 0; l < kept_layers; ++l)
    acts.layers.push_back(carve_layer(arena, c, dtype, B, T));
  if (c.vocab_local > 0) {
    acts.final_norm = arena.take(dtype, {B, T, c.d_model});
    if (c.layernorm) acts.final_mean = arena.take(dtype, {N});
    acts.final_rstd = arena.take(dtype, {N});
    acts.logits = arena.take(dtype, {N, c.vocab_local});
    acts.lse = arena.take(dtype, {N});
    acts.losses = arena.take(dtype, {N});
    acts.row_max = arena.take(dtype, {N});
    acts.exp_and_target = arena.take(dtype, {2, N});
  }
  if (!acts.for_training) return;
  acts.d_residual = arena.take(dtype, {B, T, c.d_model});
  acts.d_norm = arena.take(dtype, {B, T, c.d_model});
  acts.d_qkv = arena.take(dtype, {B, T, c.qkv_dim()});
  acts.d_attn = arena.take(dtype, {B, T, c.q_dim()});
  acts.d_mlp_in = arena.take(dtype, {B, T, c.mlp_in_dim()});
  acts.d_mlp_act = arena.take(dtype, {B, T, c.d_ff});
}

void fill_zeros_and_positions(const Activations& acts) {
  ops::zero(acts.zero_ids);
  const Tensor& positions = acts.positions;
  auto* data = positions.data<std::int32_t>();
  const std::int64_t B = positions.size(0), T = positions.size(1);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < T; ++t) data[b * T + t] = static_cast<std::int32_t>(t);
}

}  // namespace

StageDims stage_dims(const ModelConfig& config, const ParallelPlacement& placement) {
  const std::int64_t tp = placement.tp_size;
  StageDims dims;
  dims.d_model = config.d_model;
  dims.head_dim = config.head_dim;
  dims.q_heads = config.n_heads / tp;
  dims.kv_heads = config.n_kv_heads / tp;
  dims.d_ff = config.d_ff / tp;
  dims.swiglu = config.mlp() == MlpKind::swiglu;
  dims.layernorm = config.norm() == NormKind::layernorm;
  dims.layers = stage_layers(config.n_layers, placement.pp_size, placement.pp_rank).count();
  dims.vocab_local = placement.last_stage() ? config.padded_vocab() / tp : 0;
  return dims;
}

Activations plan_activations(const StageDims& dims, DType dtype, std::int64_t batch,
                             std::int64_t seq, bool for_training) {
  Activations acts;
  acts.batch = batch;
  acts.seq = seq;
  acts.for_training = for_training;
  ArenaCarver measure(nullptr);
  carve(measure, acts, dims, dtype);
  acts.storage = HostBuffer(measure.used());
  ArenaCarver place(&acts.storage);
  carve(place, acts, dims, dtype);
  fill_zeros_and_positions(acts);
  return acts;
}

Activations plan_activations(const ModelConfig& config, DType dtype, std::int64_t batch,
                             std::int64_t seq, bool for_training) {
  return plan_activations(stage_dims(config), dtype, batch, seq, for_training);
}

}  // namespace kiln::model
