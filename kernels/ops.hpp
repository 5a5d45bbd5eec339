#pragma once
// kiln::ops — the only door from model code to kernels (DESIGN.md §4, §7).
//
// Every op takes Tensor views, checks shapes and dtypes (throwing kiln::Error with a message
// that names the op and the shapes), and dispatches on device and dtype. The CPU backend
// runs in f32 (training) and f64 (gradient checks) from the same templated code; CUDA
// dispatch slots into the same functions (today a CUDA tensor gets a clear error).
//
// Conventions
// - Outputs come first, then inputs, then options (llm.c order).
// - All floating tensors of one op share one dtype (F32 or F64), including the statistics an
//   op saves for its backward (mean, rstd, lse).
// - Index tensors (token ids, targets, positions, document ids) may be I32, U32, I64 or U16
//   (the token dataset stores U16 when the vocabulary fits).
//   Masks are U8 (non-zero = keep).
// - "[..., C]" means any leading dims, flattened to rows: N = numel / C. Such tensors must
//   have a unit inner stride and leading dims that flatten to one row stride (contiguous,
//   or a column slice of a wider contiguous buffer, e.g. the gate half of a fused GEMM).
// - Backward passes ACCUMULATE into parameter gradients (dW += ...) so micro-batches add up.
//   Input gradients (dx) are overwritten unless Accumulate::Yes is passed (llm.c adds into
//   the residual stream's gradient).
// - An undefined Tensor (Tensor{}) marks an optional input (no bias, no mask, no document
//   ids) or a gradient that is not wanted.
// - In-place: where noted, an output may be the same view as an input.
#include <cstdint>
#include <vector>

#include "kernels/tensor.hpp"

namespace kiln::ops {

enum class Accumulate : bool { No = false, Yes = true };

// ---- matmul (OpenBLAS sgemm/dgemm) -------------------------------------------------------

// Linear layer, weight in PyTorch layout [out, in]:
//   x [..., in], w [out, in], b [out] or undefined  ->  y [..., out]
//   y = x W^T + b
void linear_forward(Tensor y, Tensor x, Tensor w, Tensor b = {});
// dy [..., out], x [..., in], w [out, in]  ->
//   dx [..., in]  = dy W          (overwritten, or added with Accumulate::Yes; may be undefined)
//   dw [out, in] += dy^T x        (may be undefined)
//   db [out]     += sum_rows dy   (may be undefined)
void linear_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w,
                     Accumulate accumulate_dx = Accumulate::No);

// General 2-D matmul: c [M, N] = alpha * op(a) op(b) + beta * c, where op(a) is a or a^T
// ([M, K] after op), op(b) is b or b^T ([K, N] after op). beta = 0 ignores c's contents.
void matmul(Tensor c, Tensor a, Tensor b, bool transpose_a = false, bool transpose_b = false,
            double alpha = 1.0, double beta = 0.0);

// ---- normalisation -----------------------------------------------------------------------

// LayerNorm over the last dim:
//   x [..., C], w [C], b [C]  ->  y [..., C], mean [N], rstd [N]  (saved for backward)
//   y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + eps)  (biased variance, as PyTorch)
void layernorm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b,
                       double eps = 1e-5);
// -> dx [..., C] (overwritten or accumulated), dw [C] +=, db [C] += (dw/db may be undefined)
void layernorm_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, Tensor mean,
                        Tensor rstd, Accumulate accumulate_dx = Accumulate::No);

// RMSNorm over the last dim (Llama):
//   x [..., C], w [C]  ->  y [..., C], rstd [N]  (saved)
//   y = x * rstd * w,  rstd = 1 / sqrt(mean(x^2) + eps)
void rmsnorm_forward(Tensor y, Tensor rstd, Tensor x, Tensor w, double eps = 1e-5);
// -> dx [..., C] (overwritten or accumulated), dw [C] += (may be undefined)
void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, Tensor rstd,
                      Accumulate accumulate_dx = Accumulate::No);

// ---- activations -------------------------------------------------------------------------

// GELU, tanh approximation exactly as torch.nn.functional.gelu(x, approximate='tanh'):
//   y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// x [..., C] -> y [..., C]; y may be x (in place).
void gelu_forward(Tensor y, Tensor x);
// dy, x [..., C] -> dx [..., C]; dx may be dy when overwriting.
void gelu_backward(Tensor dx, Tensor dy, Tensor x, Accumulate accumulate_dx = Accumulate::No);

// SwiGLU: out = silu(gate) * up, silu(g) = g * sigmoid(g).
// gate [..., F], up [..., F] -> out [..., F]. gate and up may be the two column halves of one
// fused [N, 2F] GEMM output (use Tensor::narrow on the last dim).
void swiglu_forward(Tensor out, Tensor gate, Tensor up);
// dout [..., F] -> dgate, dup [..., F] (overwritten; may be the halves of one [N, 2F] buffer)
void swiglu_backward(Tensor dgate, Tensor dup, Tensor dout, Tensor gate, Tensor up);

// ---- rotary position embedding -----------------------------------------------------------

// Hugging Face convention: rotate_half pairs dim i with dim i + Dh/2, frequency
// inv_freq[i] = theta^(-2i/Dh), optionally rescaled as transformers' llama3 rope_type.
struct RopeConfig {
  double theta = 10000.0;
  bool llama3_scaling = false;
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  std::int64_t original_max_position_embeddings = 8192;
};
// The Dh/2 inverse frequencies (in double), after llama3 scaling when enabled.
std::vector<double> rope_inv_freq(std::int64_t head_dim, const RopeConfig& config);

// x [B, T, H, Dh] (strided views allowed, unit inner stride), positions [B, T] (index dtype;
// positions restart at document boundaries when packing) -> y [B, T, H, Dh]; y may be x.
//   y[..i]      = x[i] cos(p f_i) - x[i + Dh/2] sin(p f_i)
//   y[..i+Dh/2] = x[i + Dh/2] cos(p f_i) + x[i] sin(p f_i)
void rope_forward(Tensor y, Tensor x, Tensor positions, const RopeConfig& config);
// The inverse rotation: dx = R^T dy. dx may be dy (in place). Overwrites dx.
void rope_backward(Tensor dx, Tensor dy, Tensor positions, const RopeConfig& config);

// ---- embedding ---------------------------------------------------------------------------

// ids [...] (index dtype), table [V, C] -> out [..., C]. An id outside [0, V) is an error.
// Accumulate::Yes adds into out (token + learned position embeddings, GPT-2).
void embedding_forward(Tensor out, Tensor ids, Tensor table,
                       Accumulate accumulate = Accumulate::No);
// dtable [V, C] += scatter-add of dout [..., C] by ids. Deterministic (no atomics): the
// result does not depend on the thread count.
void embedding_backward(Tensor dtable, Tensor dout, Tensor ids);

// Vocab-parallel variant (tensor parallelism, §6): this rank holds rows
// [first_id, first_id + V) of the table; ids outside that range give zero rows (forward)
// and are skipped (backward). The all-reduce over tp ranks is the caller's.
void embedding_forward_vocab_parallel(Tensor out, Tensor ids, Tensor table, std::int64_t first_id);
void embedding_backward_vocab_parallel(Tensor dtable, Tensor dout, Tensor ids,
                                       std::int64_t first_id);

// ---- fused softmax cross-entropy ---------------------------------------------------------

// A loss summed over the rows that count, and how many rows counted, so callers can average
// over micro-batches and data-parallel ranks before dividing.
struct LossSum {
  double sum = 0.0;
  std::int64_t count = 0;
  double mean() const { return count > 0 ? sum / static_cast<double>(count) : 0.0; }
};

// logits [N, V] (columns >= valid_vocab are vocabulary padding: zero probability, zero
// gradient), targets [N] (index dtype, < valid_vocab on unmasked rows), mask [N] u8 or
// undefined (all rows count) ->
//   losses [N] (0 on masked rows; may be undefined), lse [N] (logsumexp over valid columns,
//   saved for backward). Returns the sum over unmasked rows and their count.
LossSum cross_entropy_forward(Tensor losses, Tensor lse, Tensor logits, Tensor targets, Tensor mask,
                              std::int64_t valid_vocab);
// dlogits [N, V] = (softmax(logits) - onehot(target)) * mask * grad_scale, padding columns 0.
// Usually grad_scale = 1 / (unmasked rows in the whole optimizer batch). dlogits may be
// logits (in place, as llm.c): probabilities are formed once, on the fly, from lse.
void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor targets, Tensor lse, Tensor mask,
                            std::int64_t valid_vocab, double grad_scale);

// Vocab-parallel building blocks (§5): each tp rank holds columns
// [first_id, first_id + V_local) of the logits, of which `valid_local` are real vocabulary.
// 1. row_max [N] = max over local valid columns (-inf if none); caller all-reduces MAX.
void cross_entropy_local_max(Tensor row_max, Tensor logits, std::int64_t valid_local);
// 2. Given the global row_max: sum_exp [N] = sum exp(logit - row_max) over local valid
//    columns, target_logit [N] = logit of the target when this rank holds it, else 0.
//    Caller all-reduces SUM over both.
void cross_entropy_local_sums(Tensor sum_exp, Tensor target_logit, Tensor logits, Tensor targets,
                              Tensor row_max, std::int64_t valid_local, std::int64_t first_id);
// 3. From the reduced stats: lse [N] = row_max + log(sum_exp), losses [N] = lse - target_logit
//    (0 where masked; may be undefined). Returns the masked sum and count.
LossSum cross_entropy_finish(Tensor losses, Tensor lse, Tensor row_max, Tensor sum_exp,
                             Tensor target_logit, Tensor mask);
// 4. Backward on the local shard: as cross_entropy_backward, with the target compared
//    against first_id + column.
void cross_entropy_backward_vocab_parallel(Tensor dlogits, Tensor logits, Tensor targets,
                                           Tensor lse, Tensor mask, std::int64_t valid_local,
                                           std::int64_t first_id, double grad_scale);

// Softmax over the first valid_vocab columns at a temperature (sampling in `kiln generate`):
// logits [N, V] -> probs [N, V] (padding columns 0); probs may be logits.
void softmax_forward(Tensor probs, Tensor logits, std::int64_t valid_vocab,
                     double temperature = 1.0);

// ---- flash attention ---------------------------------------------------------------------

struct AttentionOptions {
  bool causal = true;
  double softmax_scale = 0.0;  // 0 means 1 / sqrt(Dh)
};
// q [B, Tq, Hq, Dh], k/v [B, Tk, Hkv, Dh] (Hq % Hkv == 0: query head h reads kv head
// h / (Hq / Hkv); Tq <= Tk, the queries are the last Tq positions, as with a KV cache; strided
// views allowed with unit inner stride), doc_ids [B, Tk] (index dtype) or undefined ->
//   out [B, Tq, Hq, Dh], lse [B, Hq, Tq] (natural-log logsumexp of the scaled scores, saved).
// Documents are runs of equal consecutive doc_ids: a query attends only to keys of its own
// run (and, when causal, at or before its position). Memory O(T): tiled online softmax.
void flash_attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v,
                             Tensor doc_ids = {}, const AttentionOptions& options = {});
// dout [B, Tq, Hq, Dh] -> dq [B, Tq, Hq, Dh], dk/dv [B, Tk, Hkv, Dh] (overwritten; dk/dv sum
// over the query heads that share a kv head). Recomputes the probabilities from q, k and lse
// (no T x T matrix is stored) and is deterministic: each output element is written by one
// thread, in a fixed order.
void flash_attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k,
                              Tensor v, Tensor out, Tensor lse, Tensor doc_ids = {},
                              const AttentionOptions& options = {});

// ---- optimizer ---------------------------------------------------------------------------

// One AdamW step, as torch.optim.AdamW (decoupled weight decay):
//   g = grad * grad_scale                     (grad_scale folds in clipping / averaging)
//   p -= lr * weight_decay * p                (only when apply_weight_decay)
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
struct AdamWStep {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.0;
  std::int64_t step = 1;  // t, 1-based, for bias correction
  double grad_scale = 1.0;
};
// param, grad, m, v: same shape and dtype (F32 or F64), contiguous. grad is not modified.
void adamw_step(Tensor param, Tensor grad, Tensor m, Tensor v, const AdamWStep& step,
                bool apply_weight_decay);

// Sum of x^2 over all elements, accumulated in double (global grad-norm for clipping: sum
// over every parameter once, then sqrt).
double sum_of_squares(Tensor x);

// ---- elementwise -------------------------------------------------------------------------

// out = a + b (residual forward; the backward passes the gradient to both branches, see add_to).
// All the same shape; out may alias a or b.
void add(Tensor out, Tensor a, Tensor b);
// dst += src (residual backward, gradient accumulation).
void add_to(Tensor dst, Tensor src);
// y += alpha * x.
void axpy(Tensor y, double alpha, Tensor x);
// x *= factor, in place.
void scale(Tensor x, double factor);
// dst = src. Same shape; converts between F32, F64, BF16 and F16 (round to nearest even),
// copies any other dtype verbatim when both match. Either side may be strided.
void copy(Tensor dst, Tensor src);
// x = 0 / x = value (floating dtypes for fill; zero works for any dtype).
void zero(Tensor x);
void fill(Tensor x, double value);
// False when any element is NaN or +-inf (guards the optimizer step, §1).
bool all_finite(Tensor x);

}  // namespace kiln::ops
