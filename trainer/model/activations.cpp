#include "trainer/model/activations.hpp"

#include <fmt/format.h>

#include <string>
#include <string_view>

#include "kernels/ops.hpp"
#include "trainer/config/recipe.hpp"
#include "trainer/core/error.hpp"

namespace kiln::model {

namespace {

// Walks the arena's slots in one fixed order twice: first reserving each in a plan, then
// (after the arena is allocated for it) handing out the same slots' views in the same order.
class ArenaCarver {
 public:
  explicit ArenaCarver(memory::ArenaPlan& plan) : plan_(&plan) {}
  explicit ArenaCarver(const memory::Arena& arena) : arena_(&arena) {}

  Tensor take(std::string_view name, DType dtype, Shape shape) {
    if (plan_ != nullptr) {
      plan_->reserve(prefix_ + std::string(name), dtype, shape);
      return {};
    }
    return arena_->view({next_++});
  }
  // Names the following slots "blocks.<layer>.<name>" (diagnostics only).
  void set_prefix(std::string prefix) { prefix_ = std::move(prefix); }

 private:
  memory::ArenaPlan* plan_ = nullptr;
  const memory::Arena* arena_ = nullptr;
  std::size_t next_ = 0;
  std::string prefix_;
};

// Per-row statistics (norm mean and rstd, softmax log-sum-exp, losses) are reductions: they
// stay f32 under bf16 storage, which is also what the CUDA kernels take.
DType statistics_dtype(DType storage) { return storage == DType::BF16 ? DType::F32 : storage; }

// Which of a block's tensors a training arena keeps per block under `recompute`; the others
// live once, in the shared working block.
enum class Kept { per_block, shared };

Kept kept_for(std::string_view name, Recompute recompute) {
  if (recompute == Recompute::none || name == "out") return Kept::per_block;
  if (recompute == Recompute::full) return Kept::shared;
  const bool dropped = name == "attn_norm" || name == "mlp_norm" || name == "mlp_act";
  return dropped ? Kept::shared : Kept::per_block;
}

// One block's tensors, those `wanted` says, in a fixed order. T: the whole sequence (inside the
// column -> row regions); Tc: the residual stream's chunk.
template <class Wanted>
void carve_layer(ArenaCarver& arena, LayerActivations& a, Wanted&& wanted, const StageDims& c, DType dtype,
                 std::int64_t B, std::int64_t T, std::int64_t Tc) {
  const std::int64_t Nc = B * Tc;
  const DType stats = statistics_dtype(dtype);
  const auto take = [&](Tensor& slot, std::string_view name, DType type, Shape shape) {
    if (wanted(name)) slot = arena.take(name, type, std::move(shape));
  };
  take(a.attn_norm, "attn_norm", dtype, {B, Tc, c.d_model});
  if (c.layernorm) take(a.attn_mean, "attn_mean", stats, {Nc});
  take(a.attn_rstd, "attn_rstd", stats, {Nc});
  take(a.qkv, "qkv", dtype, {B, T, c.qkv_dim()});
  take(a.attn, "attn", dtype, {B, T, c.q_dim()});
  take(a.attn_lse, "attn_lse", stats, {B, c.q_heads, T});
  take(a.mid, "mid", dtype, {B, Tc, c.d_model});
  take(a.mlp_norm, "mlp_norm", dtype, {B, Tc, c.d_model});
  if (c.layernorm) take(a.mlp_mean, "mlp_mean", stats, {Nc});
  take(a.mlp_rstd, "mlp_rstd", stats, {Nc});
  take(a.mlp_in, "mlp_in", dtype, {B, T, c.mlp_in_dim()});
  take(a.mlp_act, "mlp_act", dtype, {B, T, c.d_ff});
  take(a.out, "out", dtype, {B, Tc, c.d_model});
}

// The sequence collectives' scratch (sequence parallelism only).
void carve_sequence_parallel(ArenaCarver& arena, Activations& acts, const StageDims& c,
                             DType dtype) {
  if (c.sequence_shards == 1) return;
  const std::int64_t B = acts.batch;
  acts.sequence_full = arena.take("sequence_full", dtype, {B, acts.seq, c.d_model});
  acts.sequence_staging = arena.take("sequence_staging", dtype, {B, acts.seq, c.d_model});
}

void carve(ArenaCarver& arena, Activations& acts, const StageDims& c, DType dtype) {
  const std::int64_t B = acts.batch, T = acts.seq, N = B * T, Tc = acts.seq_chunk, Nc = B * Tc;
  const DType stats = statistics_dtype(dtype);
  acts.positions = arena.take("positions", DType::I32, {B, T});
  acts.zero_ids = arena.take("zero_ids", DType::I32, {Nc});
  acts.embedded = arena.take("embedded", dtype, {B, Tc, c.d_model});
  carve_sequence_parallel(arena, acts, c, dtype);
  const std::int64_t kept_layers = acts.for_training ? c.layers : 1;
  const Recompute recompute = acts.for_training ? c.recompute : Recompute::none;
  LayerActivations working;  // what recomputation drops, once for every block
  arena.set_prefix("recompute.");
  carve_layer(arena, working, [&](std::string_view name) { return kept_for(name, recompute) == Kept::shared; }, c,
              dtype, B, T, Tc);
  acts.layers.clear();
  for (std::int64_t l = 0; l < kept_layers; ++l) {
    arena.set_prefix(fmt::format("blocks.{}.", l));
    LayerActivations a = working;
    carve_layer(arena, a, [&](std::string_view name) { return kept_for(name, recompute) == Kept::per_block; }, c,
                dtype, B, T, Tc);
    acts.layers.push_back(a);
  }
  arena.set_prefix("");
  if (c.vocab_local > 0) {
    acts.final_norm = arena.take("final_norm", dtype, {B, Tc, c.d_model});
    if (c.layernorm) acts.final_mean = arena.take("final_mean", stats, {Nc});
    acts.final_rstd = arena.take("final_rstd", stats, {Nc});
    acts.logits = arena.take("logits", dtype, {N, c.vocab_local});
    acts.lse = arena.take("lse", stats, {N});
    acts.losses = arena.take("losses", stats, {N});
    acts.row_max = arena.take("row_max", stats, {N});
    acts.exp_and_target = arena.take("exp_and_target", stats, {2, N});
  }
  if (!acts.for_training) return;
  acts.d_residual = arena.take("d_residual", dtype, {B, Tc, c.d_model});
  acts.d_norm = arena.take("d_norm", dtype, {B, Tc, c.d_model});
  acts.d_qkv = arena.take("d_qkv", dtype, {B, T, c.qkv_dim()});
  acts.d_attn = arena.take("d_attn", dtype, {B, T, c.q_dim()});
  acts.d_mlp_in = arena.take("d_mlp_in", dtype, {B, T, c.mlp_in_dim()});
  acts.d_mlp_act = arena.take("d_mlp_act", dtype, {B, T, c.d_ff});
}

void fill_zeros_and_positions(const Activations& acts) {
  ops::zero(acts.zero_ids);
  // Built on the host and copied in: the arena may be device memory.
  const std::int64_t B = acts.positions.size(0), T = acts.positions.size(1);
  OwnedTensor positions(DType::I32, {B, T});
  auto* data = positions.data<std::int32_t>();
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t t = 0; t < T; ++t) data[b * T + t] = static_cast<std::int32_t>(t);
  ops::copy(acts.positions, positions);
}

}  // namespace

Recompute recompute_of(config::Recompute recompute) {
  switch (recompute) {
    case config::Recompute::none: return Recompute::none;
    case config::Recompute::selective: return Recompute::selective;
    case config::Recompute::full: return Recompute::full;
  }
  return Recompute::none;
}

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
  dims.sequence_shards = placement.sequence_parallel ? tp : 1;
  return dims;
}

void plan_activations(Activations& acts, const StageDims& dims, DType dtype, std::int64_t batch, std::int64_t seq,
                      bool for_training) {
  if (seq % dims.sequence_shards != 0)
    fail("activations: sequence length {} does not split into {} equal sequence-parallel chunks",
         seq, dims.sequence_shards);
  // Every view is carved again: none may survive from an earlier, different plan.
  memory::Arena arena = std::move(acts.arena);
  acts = Activations{};
  acts.arena = std::move(arena);
  acts.batch = batch;
  acts.seq = seq;
  acts.seq_chunk = seq / dims.sequence_shards;
  acts.for_training = for_training;
  memory::ArenaPlan plan;
  ArenaCarver reserve(plan);
  carve(reserve, acts, dims, dtype);
  const bool fresh = acts.arena.allocate(std::move(plan));
  ArenaCarver place(acts.arena);
  carve(place, acts, dims, dtype);
  if (fresh) fill_zeros_and_positions(acts);
}

Activations plan_activations(const StageDims& dims, DType dtype, std::int64_t batch,
                             std::int64_t seq, bool for_training) {
  Activations acts;
  plan_activations(acts, dims, dtype, batch, seq, for_training);
  return acts;
}

Activations plan_activations(const ModelConfig& config, DType dtype, std::int64_t batch,
                             std::int64_t seq, bool for_training) {
  return plan_activations(stage_dims(config), dtype, batch, seq, for_training);
}

}  // namespace kiln::model
