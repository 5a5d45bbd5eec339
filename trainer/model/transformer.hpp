#pragma once
// The decoder-only transformer (GPT-2 and Llama families, DESIGN.md §5), llm.c style: an
// explicit forward that keeps its activations in an arena, and an explicit backward beside
// it that walks the same steps in reverse. No autograd, no tape.
//
//   tokens [B, T] -> embed (+ pos_embed) -> n_layers x block -> final norm -> lm_head
//                 -> logits [B*T, Vp] -> fused cross-entropy over the real vocabulary
//   block: x -> norm -> q|k|v (one GEMM) -> RoPE -> flash attention -> out proj -> + x = mid
//            mid -> norm -> up (GELU) or gate|up (SwiGLU, one GEMM) -> down -> + mid = x'
//
// All math goes through kiln::ops on this model's dtype: F32 to train, F64 for whole-model
// gradient checks (same code, runtime dtype).
#include <cstdint>
#include <vector>

#include "kernels/ops.hpp"
#include "trainer/model/activations.hpp"
#include "trainer/model/model_config.hpp"
#include "trainer/model/parameters.hpp"

namespace kiln::model {

// One micro-batch. Index tensors may be I32, U32, I64 or U16; all are [B, T] and contiguous.
// The views must stay valid until backward() returns.
struct Batch {
  Tensor tokens;     // ids < vocab_size
  Tensor targets;    // next-token ids; undefined = forward only (logits, no loss)
  Tensor loss_mask;  // u8, non-zero = the token counts (SFT); undefined = every token counts
  Tensor doc_ids;    // packed sequences: runs of equal ids are documents; attention never
                     // crosses a run boundary. Undefined = one document per row.
  Tensor positions;  // undefined = 0..T-1, or restarting at 0 at each document of doc_ids
};

// Keys (after RoPE) and values of every layer for incremental decoding (`kiln generate`).
struct KvCache {
  std::int64_t batch = 0;
  std::int64_t capacity = 0;        // positions it can hold (<= max_seq_len)
  std::int64_t length = 0;          // positions filled so far
  std::vector<OwnedTensor> keys;    // per layer [B, capacity, Hkv, Dh]
  std::vector<OwnedTensor> values;  // per layer [B, capacity, Hkv, Dh]
  void clear() { length = 0; }
};

// Views of every weight a forward/backward touches, in GEMM form (q|k|v and gate|up fused).
// Built once over the parameter values and once over the gradients.
struct BlockTensors {
  Tensor attn_norm_w, attn_norm_b;  // [C] (bias: LayerNorm only)
  Tensor qkv_w, qkv_b;              // [(Hq+2Hkv)*Dh, C], [(Hq+2Hkv)*Dh] (bias: gpt2)
  Tensor out_w, out_b;              // [C, Hq*Dh], [C]
  Tensor mlp_norm_w, mlp_norm_b;    // [C]
  Tensor mlp_in_w, mlp_in_b;        // [F, C] (GELU) or [2F, C] gate|up (SwiGLU)
  Tensor down_w, down_b;            // [C, F], [C]
};
struct ModelTensors {
  Tensor embed;      // [Vp, C]
  Tensor pos_embed;  // [S, C] (gpt2)
  std::vector<BlockTensors> blocks;
  Tensor final_norm_w, final_norm_b;  // [C]
  Tensor lm_head;                     // [Vp, C]: embed itself when tied
};

class Transformer {
 public:
  // Parameters start at zero; call init_weights() or load values into parameters().
  explicit Transformer(const ModelConfig& config, DType dtype = DType::F32);

  const ModelConfig& config() const { return config_; }
  DType dtype() const { return params_.dtype(); }
  ParameterStore& parameters() { return params_; }
  const ParameterStore& parameters() const { return params_; }

  void init_weights(std::uint64_t run_seed);
  void zero_grads() { params_.zero_grads(); }

  // Runs the model; with targets, also the loss (summed over counted tokens, and their
  // count, so callers average over micro-batches and ranks). Plans the arena on the first
  // call and whenever [B, T] changes.
  ops::LossSum forward(const Batch& batch);
  // Accumulates parameter gradients of (loss sum * grad_scale) from the last forward, which
  // must have had targets. Usually grad_scale = 1 / (counted tokens in the optimizer batch).
  // The logits buffer becomes dlogits: logits() is unavailable until the next forward.
  void backward(double grad_scale);
  // [B, T, Vp] logits of the last forward; columns >= vocab_size are padding (not part of
  // the model: exclude them, as cross-entropy and sampling do).
  Tensor logits() const;
  std::size_t activation_bytes() const { return train_.bytes(); }

  // Incremental decoding: appends `tokens` [B, Tn] at positions cache.length .. + Tn - 1 of
  // each row (a prompt prefill, then Tn = 1 per generated token) and returns their logits
  // [B, Tn, Vp] (valid until the next call).
  KvCache make_kv_cache(std::int64_t batch, std::int64_t capacity) const;
  Tensor forward_decode(KvCache& cache, Tensor tokens);

 private:
  void check_batch(const Batch& batch) const;
  void prepare_positions(const Batch& batch);
  void embed(Tensor out, Tensor tokens, Tensor positions) const;
  void attention_input(const BlockTensors& w, Tensor x, LayerActivations& a,
                       Tensor positions) const;
  void attention_core(LayerActivations& a, Tensor k, Tensor v, Tensor doc_ids) const;
  void attention_output_and_mlp(const BlockTensors& w, Tensor x, LayerActivations& a,
                                Tensor y) const;
  void head_forward(Activations& acts, Tensor x) const;
  void norm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b) const;
  void norm_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, Tensor mean,
                     Tensor rstd, ops::Accumulate accumulate) const;
  void block_backward(std::size_t layer, Tensor x, const LayerActivations& a);
  void mlp_backward(const BlockTensors& w, const BlockTensors& g, const LayerActivations& a);
  Tensor block_input(std::size_t layer) const;

  ModelConfig config_;
  ParameterStore params_;
  ModelTensors weights_;
  ModelTensors grads_;
  Activations train_;
  Activations decode_;
  Batch batch_;
  Tensor positions_;  // [B, T] positions of the last forward (batch's or the arena's)
  bool logits_valid_ = false;
  bool backward_ready_ = false;
};

}  // namespace kiln::model
