#pragma once
// The activations arena (DESIGN.md §4): every tensor the forward pass keeps for the backward
// pass, and the backward scratch, carved out of one memory::Arena (category activations)
// planned once per (micro-batch, seq_len): forward() and backward() allocate no activation
// memory.
//
// Per block l (input x_l = l == 0 ? embedded : layers[l-1].out), [B, T, ...] (Tc = T without
// sequence parallelism, see below):
//   attn_norm [B,Tc,C], attn_mean/attn_rstd [B*Tc] norm before attention (mean: LayerNorm only)
//   qkv       [B,T,(Hq+2Hkv)*Dh]                   fused projection, q and k after RoPE
//   attn      [B,T,Hq*Dh], attn_lse [B,Hq,T]       attention output, its logsumexp
//   mid       [B,Tc,C]                             x_l + attention projection
//   mlp_norm  [B,Tc,C], mlp_mean/mlp_rstd [B*Tc]
//   mlp_in    [B,T,F] (GELU input) or [B,T,2F] (gate|up)
//   mlp_act   [B,T,F]                              GELU / SwiGLU output
//   out       [B,Tc,C]                             mid + MLP projection = x_{l+1}
// An inference arena (kept_layers = 1) reuses one block's slots for every layer and writes
// the residual stream back into `embedded`.
//
// Widths are this rank's (StageDims): under tensor parallelism Hq, Hkv and F are the local
// heads and hidden width and the logits hold the local vocabulary shard; a pipeline stage
// keeps only its own blocks, and `embedded` is the stage input (the previous stage's output
// copied in) on every stage but the first. Only the last stage has the head's buffers.
//
// Sequence parallelism (StageDims::sequence_shards = tp) shortens the tensors of the residual
// stream to this rank's chunk of Tc = T / tp positions: embedded, attn_norm, mid, mlp_norm,
// out, final_norm, the norms' statistics, zero_ids, d_residual and d_norm are [B, Tc, ...];
// what lives inside the column -> row regions (qkv, attn, attn_lse, mlp_in, mlp_act, logits
// and their gradients) still covers all T. Added: the shared scratch of the sequence
// collectives, sequence_full and sequence_staging, [B, T, C] each.
// Per block that keeps 4 [B, T, C] tensors and 2 (RMSNorm) or 4 (LayerNorm) [B*T] statistics
// at 1/tp of their size.
#include <cstdint>
#include <vector>

#include "kernels/memory/arena.hpp"
#include "kernels/tensor.hpp"
#include "trainer/model/model_config.hpp"

namespace kiln::model {

// Activation recomputation (train.recompute): what a training arena keeps per block.
//   none       every tensor listed above;
//   selective  drops what elementwise and norm kernels give back from what is kept: the norm
//              outputs (attn_norm, mlp_norm) and the MLP activation (mlp_act), the largest
//              tensors with no GEMM or attention behind them; the backward of a block
//              recomputes them first (Transformer::recompute_block);
//   full       keeps only each block's output (the next block's input); the backward of a
//              block runs its forward again first.
// What is dropped lives once, in a shared working block (slots "recompute.*") that every block
// writes in the forward and the block being differentiated rewrites in the backward. The
// recomputed values are the forward's bits (the same ops on the same inputs), so losses and
// gradients do not change.
enum class Recompute : std::uint8_t { none, selective, full };
}  // namespace kiln::model
namespace kiln::config {
enum class Recompute;  // the recipe's train.recompute (trainer/config/recipe.hpp)
}  // namespace kiln::config
namespace kiln::model {
Recompute recompute_of(config::Recompute recompute);

// The sizes one rank computes with.
struct StageDims {
  std::int64_t d_model = 0;
  std::int64_t head_dim = 0;
  std::int64_t q_heads = 0, kv_heads = 0;  // local heads (n_heads / tp, n_kv_heads / tp)
  std::int64_t d_ff = 0;                   // local MLP hidden width (d_ff / tp)
  bool swiglu = false;
  bool layernorm = false;
  std::int64_t layers = 0;       // blocks of this stage
  std::int64_t vocab_local = 0;  // logits columns (padded_vocab / tp); 0: no head on this stage
  std::int64_t sequence_shards = 1;  // tp under sequence parallelism: the residual stream's split
  Recompute recompute = Recompute::none;  // training arenas only

  std::int64_t q_dim() const { return q_heads * head_dim; }
  std::int64_t kv_dim() const { return kv_heads * head_dim; }
  std::int64_t qkv_dim() const { return q_dim() + 2 * kv_dim(); }
  std::int64_t mlp_in_dim() const { return swiglu ? 2 * d_ff : d_ff; }
};

// The dims of `placement` (the whole model by default).
StageDims stage_dims(const ModelConfig& config, const ParallelPlacement& placement = {});

struct LayerActivations {
  Tensor attn_norm, attn_mean, attn_rstd;
  Tensor qkv;
  Tensor attn, attn_lse;
  Tensor mid;
  Tensor mlp_norm, mlp_mean, mlp_rstd;
  Tensor mlp_in, mlp_act;
  Tensor out;
};

struct Activations {
  std::int64_t batch = 0;
  std::int64_t seq = 0;
  std::int64_t seq_chunk = 0;  // positions of the residual stream here: seq / sequence_shards
  bool for_training = false;

  Tensor positions;  // [B, T] i32: positions used when the batch gives none
  Tensor embedded;   // [B, Tc, C] the residual stream entering block 0
  std::vector<LayerActivations> layers;
  Tensor final_norm, final_mean, final_rstd;  // [B, Tc, C], [B*Tc], [B*Tc]
  Tensor logits;  // [B*T, Vp/tp]; turned into dlogits in place by backward
  Tensor lse;     // [B*T] logsumexp over the real vocabulary (cross-entropy)
  Tensor losses;  // [B*T] per-token loss (0 where masked)
  // Vocab-parallel cross-entropy statistics: row maxima [B*T], and [2, B*T] holding the sums of
  // exp and the target logits (one buffer, so one all-reduce reduces both).
  Tensor row_max, exp_and_target;
  Tensor zero_ids;  // [B*Tc] i32 zeros: adds a bias row to every token (row-parallel bias)

  // Sequence parallelism only (undefined otherwise).
  Tensor sequence_full;     // [B, T, C] a gathered input, or a partial output to reduce-scatter
  Tensor sequence_staging;  // [B, T, C] the same in the collectives' rank-major order

  // Backward scratch, shared by all blocks (training arenas only).
  Tensor d_residual;  // [B, Tc, C] gradient of the residual stream (of the stage input at the end)
  Tensor d_norm;      // [B, Tc, C] gradient of a norm's output
  Tensor d_qkv;       // [B, T, (Hq+2Hkv)*Dh]
  Tensor d_attn;      // [B, T, Hq*Dh]
  Tensor d_mlp_in;    // [B, T, F or 2F]
  Tensor d_mlp_act;   // [B, T, F]

  std::size_t bytes() const { return arena.bytes(); }
  memory::Arena arena{memory::MemoryCategory::activations};
};

// Plans `acts`' arena for [batch, seq] and points its tensors into it; seq must split into
// dims.sequence_shards equal chunks. `for_training` keeps every block's activations and adds
// the backward scratch; otherwise one block's worth is reused through the stack. The memory
// is kept (contents included) when the plan is the one it already has; otherwise the old arena
// is freed before the new one is allocated.
void plan_activations(Activations& acts, const StageDims& dims, DType dtype, std::int64_t batch, std::int64_t seq,
                      bool for_training);
// The same into a new Activations.
Activations plan_activations(const StageDims& dims, DType dtype, std::int64_t batch,
                             std::int64_t seq, bool for_training);
// The whole model in one process.
Activations plan_activations(const ModelConfig& config, DType dtype, std::int64_t batch,
                             std::int64_t seq, bool for_training);

}  // namespace kiln::model
