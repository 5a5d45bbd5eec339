#include "trainer/model/transformer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <string>

#include "parallel/tensor_parallel.hpp"
#include "trainer/core/error.hpp"
#include "trainer/model/init.hpp"

namespace kiln::model {

namespace {

// ---- views -------------------------------------------------------------------------------

// [B, T, heads, Dh] view of columns [first_col, first_col + heads * Dh) of a contiguous
// [B, T, W] buffer: q, k or v inside the fused q|k|v GEMM output.
Tensor heads_view(const Tensor& fused, std::int64_t first_col, std::int64_t heads,
                  std::int64_t head_dim) {
  const std::int64_t B = fused.size(0), T = fused.size(1), W = fused.size(2);
  auto* base = static_cast<std::byte*>(fused.ptr) +
               static_cast<std::size_t>(first_col) * fused.element_size();
  return Tensor(base, fused.dtype, {B, T, heads, head_dim}, {T * W, W, head_dim, 1}, fused.device);
}

struct QkvViews {
  Tensor q, k, v;  // [B, T, H, Dh] strided views
};

// q, k and v of this rank's heads (all heads without tensor parallelism).
QkvViews split_qkv(const Tensor& qkv, const StageDims& d) {
  return {heads_view(qkv, 0, d.q_heads, d.head_dim),
          heads_view(qkv, d.q_dim(), d.kv_heads, d.head_dim),
          heads_view(qkv, d.q_dim() + d.kv_dim(), d.kv_heads, d.head_dim)};
}

// [B, T, H*Dh] <-> [B, T, H, Dh] (contiguous).
Tensor as_heads(const Tensor& x, std::int64_t heads) {
  return x.reshape({x.size(0), x.size(1), heads, -1});
}

// The gate and up halves of a fused [B, T, 2F] SwiGLU buffer.
Tensor gate_half(const Tensor& fused) { return fused.narrow(-1, 0, fused.size(-1) / 2); }
Tensor up_half(const Tensor& fused) {
  const std::int64_t F = fused.size(-1) / 2;
  return fused.narrow(-1, F, F);
}

// ---- weight views ------------------------------------------------------------------------

// Picks parameter values or their gradients by name.
struct Picker {
  const ParameterStore& store;
  bool gradients;
  Tensor get(const std::string& name) const {
    return gradients ? store.grad(name) : store.value(name);
  }
  Tensor optional(const std::string& name) const {
    return store.contains(name) ? get(name) : Tensor{};
  }
  Tensor get_fused(const std::string& name) const {
    return gradients ? store.fused_grad(name) : store.fused_value(name);
  }
};

BlockTensors gather_block(const Picker& pick, const ModelConfig& c, std::int64_t layer) {
  const std::string p = fmt::format("blocks.{}.", layer);
  BlockTensors t;
  t.attn_norm_w = pick.get(p + "attn_norm.weight");
  t.attn_norm_b = pick.optional(p + "attn_norm.bias");
  t.qkv_w = pick.get_fused(p + "attn.qkv.weight");
  if (c.has_biases()) t.qkv_b = pick.get_fused(p + "attn.qkv.bias");
  t.out_w = pick.get(p + "attn.out.weight");
  t.out_b = pick.optional(p + "attn.out.bias");
  t.mlp_norm_w = pick.get(p + "mlp_norm.weight");
  t.mlp_norm_b = pick.optional(p + "mlp_norm.bias");
  t.mlp_in_w = c.mlp() == MlpKind::swiglu ? pick.get_fused(p + "mlp.gate_up.weight")
                                          : pick.get(p + "mlp.up.weight");
  t.mlp_in_b = pick.optional(p + "mlp.up.bias");
  t.down_w = pick.get(p + "mlp.down.weight");
  t.down_b = pick.optional(p + "mlp.down.bias");
  return t;
}

ModelTensors gather(const ParameterStore& store, const ModelConfig& c, bool gradients) {
  const Picker pick{store, gradients};
  const ParallelPlacement& at = store.placement();
  ModelTensors t;
  if (at.first_stage()) {
    t.embed = pick.get("embed.weight");
    t.pos_embed = pick.optional("pos_embed.weight");
  }
  for (std::int64_t layer = store.layers().first; layer < store.layers().last; ++layer)
    t.blocks.push_back(gather_block(pick, c, layer));
  if (at.last_stage()) {
    t.final_norm_w = pick.get("final_norm.weight");
    t.final_norm_b = pick.optional("final_norm.bias");
    // Tied: the first stage's embed.weight, or (pp > 1) this stage's copy of it.
    t.lm_head = pick.get(c.tie_embeddings ? "embed.weight" : "lm_head.weight");
  }
  return t;
}

void check_activation(const Tensor& t, const Shape& shape, DType dtype, const char* what) {
  if (!t.defined() || t.shape != shape || t.dtype != dtype || !t.is_contiguous())
    fail("model: {} is {}; expected a contiguous {} {}", what, t.str(), dtype_name(dtype),
         shape.str());
}

}  // namespace

Transformer::Slot::Slot(memory::Allocator& allocator)
    : loss_sum_memory(2 * sizeof(double), memory::MemoryCategory::workspace, allocator),
      loss_sum(loss_sum_memory.view(DType::F64, {2})) {
  acts.arena = memory::Arena(memory::MemoryCategory::activations, allocator);
}

Transformer::Transformer(const ModelConfig& config, DType dtype, ParallelPlacement placement,
                         memory::Allocator& allocator)
    : config_(config.resolved()),
      placement_(placement),
      dims_(stage_dims(config_, placement)),
      params_(config_, dtype, placement, allocator),
      host_inputs_(allocator) {
  decode_.arena = memory::Arena(memory::MemoryCategory::activations, allocator);
  parallel::Communicator* tp = tensor_parallel() ? placement_.tp : nullptr;
  const auto vocab = parallel::VocabShard::of(config_.vocab_size, config_.padded_vocab(),
                                              placement_.tp_rank, placement_.tp_size);
  const auto sequence = sequence_parallel() ? parallel::SequenceParallel::on : parallel::SequenceParallel::off;
  column_parallel_ = parallel::ColumnParallelLinear(tp, sequence);
  row_parallel_ = parallel::RowParallelLinear(tp, sequence);
  vocab_embedding_ = parallel::VocabParallelEmbedding(tp, vocab, sequence);
  vocab_cross_entropy_ = parallel::VocabParallelCrossEntropy(tp, vocab);
  weights_ = gather(params_, config_, false);
  grads_ = gather(params_, config_, true);
  if (sequence_parallel() && tp != nullptr)
    sequence_gradients_ = parallel::SequenceParallelGradients(*tp, sequence_chunk_gradients(),
                                                              params_.grad_dtype(), allocator);
  if (placement_.cp != nullptr && placement_.cp->size() > 1) ring_attention_ = parallel::RingAttention(placement_.cp, allocator);
  slots_.emplace_back(allocator);
}

// ---- sequence parallelism ------------------------------------------------------------------

Shape Transformer::stage_activation_shape(std::int64_t batch, std::int64_t seq) const {
  return {batch, seq / dims_.sequence_shards, config_.d_model};
}

void Transformer::check_sequence_split(std::int64_t seq) const {
  if (seq % dims_.sequence_shards != 0)
    fail("model: sequence parallelism splits the sequence into tp = {} equal chunks, but it is {} "
         "positions long (parallel.sequence_parallel needs train.seq_len divisible by parallel.tp)",
         dims_.sequence_shards, seq);
}

parallel::SequenceScratch Transformer::sequence_scratch(const Activations& acts) {
  return {acts.sequence_full, acts.sequence_staging};
}

// Learned positions of the residual stream's rows: out [B, Tc, C] += pos_embed[positions of
// this rank's chunk], and the backward's scatter-add. Under SP the chunk of each batch row is
// one contiguous run of the batch's positions (which keep their index dtype and row stride),
// so the lookup goes row by row instead of copying them out.
void Transformer::add_positions(Tensor out, Tensor positions) const {
  if (!sequence_parallel())
    return ops::embedding_forward(out, positions, weights_.pos_embed, ops::Accumulate::Yes);
  for (std::int64_t b = 0; b < out.size(0); ++b)
    ops::embedding_forward(out.select(b), chunk_of_row(positions, b), weights_.pos_embed,
                           ops::Accumulate::Yes);
}

void Transformer::positions_backward(Tensor dout, Tensor positions) {
  if (!sequence_parallel()) return ops::embedding_backward(grads_.pos_embed, dout, positions);
  for (std::int64_t b = 0; b < dout.size(0); ++b)
    ops::embedding_backward(grads_.pos_embed, dout.select(b), chunk_of_row(positions, b));
}

// [Tc] view of this rank's chunk of row b of a [B, T] tensor.
Tensor Transformer::chunk_of_row(const Tensor& per_position, std::int64_t b) const {
  const std::int64_t chunk = per_position.size(1) / dims_.sequence_shards;
  return per_position.select(b).narrow(0, placement_.tp_rank * chunk, chunk);
}

// The replicated parameters that SP applies to this rank's chunk only, so that each rank's
// gradient is its chunk's share: the norms and the learned positions. (The row-parallel biases
// take their gradient from the gathered output gradient, whole, as without SP.)
std::vector<ops::FlatRange> Transformer::sequence_chunk_gradients() const {
  std::vector<Tensor> chunk_only{grads_.pos_embed, grads_.final_norm_w, grads_.final_norm_b};
  for (const BlockTensors& g : grads_.blocks)
    chunk_only.insert(chunk_only.end(), {g.attn_norm_w, g.attn_norm_b, g.mlp_norm_w, g.mlp_norm_b});
  const auto* flat = static_cast<const std::byte*>(params_.grads().ptr);
  std::vector<ops::FlatRange> ranges;
  for (const Tensor& grad : chunk_only) {
    if (!grad.defined()) continue;
    const auto bytes = static_cast<const std::byte*>(grad.ptr) - flat;
    ranges.push_back({bytes / static_cast<std::ptrdiff_t>(grad.element_size()), grad.numel()});
  }
  std::sort(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) { return a.offset < b.offset; });
  return ranges;
}

void Transformer::complete_sequence_parallel_gradients(Tensor grads, std::int64_t first) {
  if (!sequence_parallel()) return;
  if (placement_.tp == nullptr)
    fail("model: sequence parallelism needs a tensor-parallel communicator (ParallelPlacement::tp)");
  sequence_gradients_.complete(grads, first);
}

void Transformer::init_weights(std::uint64_t run_seed) {
  init_parameters(params_, config_, run_seed);
}

void Transformer::set_pipeline_slots(int slots) {
  if (slots < 1) fail("model: set_pipeline_slots({}): a stage needs at least one slot", slots);
  while (pipeline_slots() > slots) slots_.pop_back();
  while (pipeline_slots() < slots) slots_.emplace_back(params_.allocator());
}

void Transformer::reserve_activations(std::int64_t batch, std::int64_t seq) {
  check_sequence_split(seq);
  for (Slot& slot : slots_)
    if (slot.acts.batch != batch || slot.acts.seq != seq)
      plan_activations(slot.acts, dims_, dtype(), batch, seq, /*for_training=*/true);
}

std::size_t Transformer::activation_bytes() const {
  std::size_t bytes = 0;
  for (const Slot& slot : slots_) bytes += slot.acts.bytes();
  return bytes;
}

Transformer::Slot& Transformer::slot_at(int slot, const char* caller) {
  if (slot < 0 || slot >= pipeline_slots())
    fail("model: {}: slot {} does not exist ({} pipeline slots; see set_pipeline_slots)", caller,
         slot, pipeline_slots());
  return slots_[static_cast<std::size_t>(slot)];
}

// ---- shared pieces -------------------------------------------------------------------------

void Transformer::norm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor w,
                               Tensor b) const {
  if (config_.norm() == NormKind::layernorm)
    ops::layernorm_forward(y, mean, rstd, x, w, b, config_.norm_eps);
  else
    ops::rmsnorm_forward(y, rstd, x, w, config_.norm_eps);
}

void Transformer::norm_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w,
                                Tensor mean, Tensor rstd, ops::Accumulate accumulate) const {
  if (config_.norm() == NormKind::layernorm)
    ops::layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, accumulate);
  else
    ops::rmsnorm_backward(dx, dw, dy, x, w, rstd, accumulate);
}

// out [B, T, C] = embed[tokens] (+ pos_embed[positions]). Vocab-parallel: summed over tp
// before the (replicated) positions are added once. SP: out is this rank's chunk [B, T/tp, C]
// of the sequence; tokens and positions cover all T.
void Transformer::embed(Tensor out, Tensor tokens, Tensor positions,
                        const parallel::SequenceScratch& scratch) const {
  vocab_embedding_.forward(out, tokens, weights_.embed, scratch);
  if (config_.learned_positions()) add_positions(out, positions);
}

// x [B, T, C] -> a.attn_norm, a.qkv (this rank's heads; q and k rotated in place when the
// family uses RoPE). ColumnParallelLinear: no communication in forward, but an all-gather of
// the norm output under SP (x is then the chunk [B, T/tp, C], a.qkv still all T).
void Transformer::attention_input(const BlockTensors& w, Tensor x, LayerActivations& a,
                                  Tensor positions, const parallel::SequenceScratch& scratch) const {
  norm_forward(a.attn_norm, a.attn_mean, a.attn_rstd, x, w.attn_norm_w, w.attn_norm_b);
  column_parallel_.forward(a.qkv, a.attn_norm, w.qkv_w, w.qkv_b, scratch);
  if (!config_.uses_rope()) return;
  const QkvViews qkv = split_qkv(a.qkv, dims_);
  ops::rope_forward(qkv.q, qkv.q, positions, config_.rope);
  ops::rope_forward(qkv.k, qkv.k, positions, config_.rope);
}

// a.attn [B, Tq, Hq*Dh], a.attn_lse <- attention of the queries in a.qkv over k, v
// [B, Tk, Hkv, Dh] (the block's own keys in training, the KV cache when decoding).
void Transformer::attention_core(LayerActivations& a, Tensor k, Tensor v, Tensor doc_ids,
                                 const ops::AttentionOptions& options) const {
  const QkvViews qkv = split_qkv(a.qkv, dims_);
  ops::flash_attention_forward(as_heads(a.attn, dims_.q_heads), a.attn_lse, qkv.q, k, v, doc_ids, options);
}

// Training and scoring attend with the library set_attention_library chose.
ops::AttentionOptions Transformer::batch_attention(const Batch& batch) const {
  if (attention_library_ == ops::AttentionLibrary::kiln) return {};
  if (attention_library_ == ops::AttentionLibrary::kiln_wgmma)
    return {.causal = true, .softmax_scale = 0.0, .library = attention_library_};
  if (!batch.documents) fail("model: cuDNN attention needs the batch's document runs (a batch uploaded by DeviceBatch)");
  return {.causal = true, .softmax_scale = 0.0, .library = attention_library_, .documents = batch.documents.get()};
}

void Transformer::set_attention_library(ops::AttentionLibrary library) { attention_library_ = library; }

void Transformer::attend(LayerActivations& a, Tensor q, Tensor k, Tensor v, const Batch& batch) {
  if (!ring_attention_.active()) return attention_core(a, k, v, batch.doc_ids, batch_attention(batch));
  ring_attention_.forward(as_heads(a.attn, dims_.q_heads), a.attn_lse, q, k, v, batch.doc_ids, context_of(batch));
}

void Transformer::attend_backward(Tensor dq, Tensor dk, Tensor dv, Tensor d_attn, const LayerActivations& a, Tensor q,
                                  Tensor k, Tensor v, const Batch& batch) {
  const Tensor out = as_heads(a.attn, dims_.q_heads);
  if (!ring_attention_.active())
    return ops::flash_attention_backward(dq, dk, dv, d_attn, q, k, v, out, a.attn_lse, batch.doc_ids,
                                         batch_attention(batch));
  ring_attention_.backward(dq, dk, dv, d_attn, q, k, v, out, a.attn_lse, batch.doc_ids, context_of(batch));
}

const parallel::ContextChunks& Transformer::context_of(const Batch& batch) const {
  if (!batch.context)
    fail("model: context parallelism needs the batch's chunk layout (Batch::context, made when the trainer cuts the "
         "micro-batch for its cp rank)");
  return *batch.context;
}

// x, a.attn -> a.mid = x + attn proj; MLP; y = a.mid + MLP out. y may alias x (inference).
void Transformer::attention_output_and_mlp(const BlockTensors& w, Tensor x, const Activations& acts,
                                           LayerActivations& a, Tensor y) const {
  const parallel::SequenceScratch scratch = sequence_scratch(acts);
  row_parallel_.forward(a.mid, a.attn, w.out_w, w.out_b, acts.zero_ids, scratch);
  ops::add(a.mid, a.mid, x);
  norm_forward(a.mlp_norm, a.mlp_mean, a.mlp_rstd, a.mid, w.mlp_norm_w, w.mlp_norm_b);
  column_parallel_.forward(a.mlp_in, a.mlp_norm, w.mlp_in_w, w.mlp_in_b, scratch);
  mlp_activation(a);
  row_parallel_.forward(y, a.mlp_act, w.down_w, w.down_b, acts.zero_ids, scratch);
  ops::add(y, y, a.mid);
}

// a.mlp_act [B, T, F] = GELU(mlp_in), or SwiGLU(gate, up) of its two halves.
void Transformer::mlp_activation(LayerActivations& a) const {
  if (config_.mlp() == MlpKind::swiglu)
    ops::swiglu_forward(a.mlp_act, gate_half(a.mlp_in), up_half(a.mlp_in));
  else
    ops::gelu_forward(a.mlp_act, a.mlp_in);
}

void Transformer::set_recompute(Recompute recompute) { dims_.recompute = recompute; }

// Selective: the norm outputs and the MLP activation, from the kept inputs and statistics.
// Full: the block's whole forward from its input (its collectives included, in the same order
// on every rank). The same ops on the same inputs: the forward's bits.
void Transformer::recompute_block(Slot& slot, std::size_t layer) {
  const BlockTensors& w = weights_.blocks[layer];
  Activations& acts = slot.acts;
  LayerActivations& a = acts.layers[layer];
  const Tensor x = block_input(acts, layer);
  if (dims_.recompute == Recompute::selective) {
    norm_forward(a.attn_norm, a.attn_mean, a.attn_rstd, x, w.attn_norm_w, w.attn_norm_b);
    norm_forward(a.mlp_norm, a.mlp_mean, a.mlp_rstd, a.mid, w.mlp_norm_w, w.mlp_norm_b);
    mlp_activation(a);
    return;
  }
  attention_input(w, x, a, slot.batch.positions, sequence_scratch(acts));
  const QkvViews qkv = split_qkv(a.qkv, dims_);
  attend(a, qkv.q, qkv.k, qkv.v, slot.batch);
  attention_output_and_mlp(w, x, acts, a, a.out);
}

// x [B, T, C] -> final norm -> logits [B*T, Vp/tp] (this rank's vocabulary columns). SP: x is
// the chunk; the norm output is gathered, so the logits cover all B*T rows as without SP.
void Transformer::head_forward(Activations& acts, Tensor x) const {
  norm_forward(acts.final_norm, acts.final_mean, acts.final_rstd, x, weights_.final_norm_w,
               weights_.final_norm_b);
  column_parallel_.forward(acts.logits, acts.final_norm, weights_.lm_head, {}, sequence_scratch(acts));
}

// Cross-entropy over the real vocabulary, identical on every tp rank.
void Transformer::loss_forward(Activations& acts, Tensor loss_sum, const Batch& batch) const {
  vocab_cross_entropy_.forward(acts.losses, acts.lse, loss_sum, acts.logits, batch.targets,
                               batch.loss_mask, {acts.row_max, acts.exp_and_target});
}

// ---- training forward ----------------------------------------------------------------------

// Shapes only: the values (ids inside the vocabulary, positions) were checked once, on the
// host, when the batch was built (trainer/model/batch.hpp); the model never reads them here.
void Transformer::check_tokens(const Tensor& tokens) const {
  if (!tokens.defined() || tokens.rank() != 2 || tokens.numel() == 0)
    fail("model: batch.tokens is {}; expected a non-empty [B, T]", tokens.str());
  if (tokens.size(1) > config_.max_seq_len)
    fail("model: sequence length {} exceeds max_seq_len {}", tokens.size(1), config_.max_seq_len);
}

void Transformer::check_batch(const Batch& batch) const {
  check_tokens(batch.tokens);
  const auto check_same_shape = [&](const Tensor& t, const char* name) {
    if (t.defined() && t.shape != batch.tokens.shape)
      fail("model: batch.{} is {}; expected {} like batch.tokens", name, t.str(),
           batch.tokens.shape.str());
  };
  check_same_shape(batch.targets, "targets");
  check_same_shape(batch.loss_mask, "loss_mask");
  check_same_shape(batch.doc_ids, "doc_ids");
  check_same_shape(batch.positions, "positions");
  if (!batch.positions.defined())
    fail("model: batch.positions is missing; build the batch with model::BatchInputs or "
         "train::MicroBatch, which check the ids and compute the positions once");
}

Tensor Transformer::block_input(const Activations& acts, std::size_t layer) {
  return layer == 0 ? acts.embedded : acts.layers[layer - 1].out;
}

Transformer::StageForward Transformer::forward_stage(int slot_index, const Batch& batch,
                                                     Tensor input) {
  Slot& slot = slot_at(slot_index, "forward_stage");
  if (tensor_parallel() && placement_.tp == nullptr)
    fail("model: tp_size = {} needs a tensor-parallel communicator (ParallelPlacement::tp)",
         placement_.tp_size);
  check_batch(batch);
  slot.logits_valid = slot.backward_ready = false;  // until this forward has succeeded
  const std::int64_t B = batch.tokens.size(0), T = batch.tokens.size(1);
  check_sequence_split(T);
  if (first_stage() && input.defined())
    fail("model: the first pipeline stage embeds batch.tokens; it takes no input tensor");
  if (!first_stage()) check_activation(input, stage_activation_shape(B, T), dtype(), "stage input");
  if (slot.acts.batch != B || slot.acts.seq != T)
    plan_activations(slot.acts, dims_, dtype(), B, T, /*for_training=*/true);
  Activations& acts = slot.acts;
  slot.batch = batch;

  if (first_stage()) {
    need_parameters_below(acts.layers.empty() ? block_end(0) : block_offset(0));
    embed(acts.embedded, batch.tokens, batch.positions, sequence_scratch(acts));
  } else {
    ops::copy(acts.embedded, input);
  }
  for (std::size_t l = 0; l < acts.layers.size(); ++l) {
    LayerActivations& a = acts.layers[l];
    need_parameters_below(block_end(l));
    attention_input(weights_.blocks[l], block_input(acts, l), a, batch.positions, sequence_scratch(acts));
    const QkvViews qkv = split_qkv(a.qkv, dims_);
    attend(a, qkv.q, qkv.k, qkv.v, batch);
    attention_output_and_mlp(weights_.blocks[l], block_input(acts, l), acts, a, a.out);
  }
  if (!last_stage()) {
    slot.backward_ready = true;
    return {{}, acts.layers.back().out};
  }
  need_parameters_below(params_.numel());
  head_forward(acts, acts.layers.back().out);
  slot.logits_valid = true;
  if (!batch.targets.defined()) return {};
  loss_forward(acts, slot.loss_sum, batch);
  slot.backward_ready = true;
  return {slot.loss_sum, {}};
}

ops::LossSum Transformer::forward(const Batch& batch) {
  if (placement_.pp_size > 1)
    fail("model: forward() runs the whole model; with pp = {} stages use forward_stage()",
         placement_.pp_size);
  const Tensor loss_sum = forward_stage(0, on_model_device(batch), {}).loss_sum;
  return loss_sum.defined() ? ops::read_loss_sum(loss_sum) : ops::LossSum{};
}

// A batch already on the model's device is used as it is; a host batch is copied (on the
// host device, upload() is the batch itself).
const Batch& Transformer::on_model_device(const Batch& batch) {
  if (batch.tokens.device == params_.allocator().device()) return batch;
  return host_inputs_.upload(batch);
}

Tensor Transformer::logits() const {
  const Slot& slot = slots_.front();
  if (!last_stage()) fail("model: logits live on the last pipeline stage");
  if (!slot.logits_valid)
    fail("model: logits are not available (no forward yet, or backward reused the buffer)");
  return slot.acts.logits.reshape({slot.acts.batch, slot.acts.seq, -1});
}

// ---- backward ------------------------------------------------------------------------------

void Transformer::backward(double grad_scale, const GradientsFinal& on_final) {
  if (placement_.pp_size > 1)
    fail("model: backward() runs the whole model; with pp = {} stages use backward_stage()",
         placement_.pp_size);
  backward_stage(0, {}, grad_scale, on_final);
}

// A block's parameters start with its attention norm (registry order, parameters.cpp).
std::int64_t Transformer::block_offset(std::size_t local_layer) const {
  const auto layer = layers().first + static_cast<std::int64_t>(local_layer);
  return params_.info(fmt::format("blocks.{}.attn_norm.weight", layer)).offset;
}

// Everything after the last block: final norm, lm_head or the tied copy of embed.weight.
std::int64_t Transformer::head_offset() const { return params_.info("final_norm.weight").offset; }

std::int64_t Transformer::block_end(std::size_t local_layer) const {
  const auto blocks = static_cast<std::size_t>(layers().last - layers().first);
  if (local_layer + 1 < blocks) return block_offset(local_layer + 1);
  return last_stage() ? head_offset() : params_.numel();
}

void Transformer::set_parameters_needed(ParametersNeeded needed) { parameters_needed_ = std::move(needed); }

void Transformer::need_parameters_below(std::int64_t offset) const {
  if (parameters_needed_) parameters_needed_(offset);
}

std::vector<std::int64_t> Transformer::gradient_final_offsets() const {
  std::vector<std::int64_t> offsets{0};
  const auto blocks = static_cast<std::size_t>(layers().last - layers().first);
  for (std::size_t l = 0; l < blocks; ++l) offsets.push_back(block_offset(l));
  if (last_stage()) offsets.push_back(head_offset());
  return offsets;
}

// dlogits -> d_residual = gradient of the last block's output.
void Transformer::head_backward(Slot& slot, double grad_scale) {
  Activations& acts = slot.acts;
  const Batch& batch = slot.batch;
  // dlogits overwrite the logits in place: probabilities are formed once, from lse.
  vocab_cross_entropy_.backward(acts.logits, acts.logits, batch.targets, acts.lse, batch.loss_mask,
                                grad_scale);
  slot.logits_valid = false;
  // The head is column-parallel over the vocabulary.
  column_parallel_.backward(acts.d_norm, grads_.lm_head, {}, acts.logits, acts.final_norm,
                            weights_.lm_head, sequence_scratch(acts));
  norm_backward(acts.d_residual, grads_.final_norm_w, grads_.final_norm_b, acts.d_norm,
                acts.layers.back().out, weights_.final_norm_w, acts.final_mean, acts.final_rstd,
                ops::Accumulate::No);
}

// Replicated parameters (norm weights and biases, row-parallel biases, pos_embed) get the
// same gradient on every tp rank, because every column-parallel input gradient is all-reduced
// before it reaches them: the trainer must count them once over tp (grad norm, checkpoints).
// Under SP the norms and pos_embed see only this rank's chunk: the same holds once
// complete_sequence_parallel_gradients() has summed them.
Tensor Transformer::backward_stage(int slot_index, Tensor grad_output, double grad_scale,
                                   const GradientsFinal& on_final) {
  const auto report_final = [&](auto offset_of) {
    if (on_final) on_final(offset_of());
  };
  Slot& slot = slot_at(slot_index, "backward_stage");
  if (!slot.backward_ready)
    fail("model: backward of slot {} needs a forward{} of that slot before it", slot_index,
         last_stage() ? " with targets" : "");
  Activations& acts = slot.acts;
  if (last_stage()) {
    if (grad_output.defined())
      fail(
          "model: the last pipeline stage starts backward from the loss; it takes no "
          "grad_output");
    head_backward(slot, grad_scale);
    report_final([&] { return head_offset(); });
  } else {
    check_activation(grad_output, stage_activation_shape(acts.batch, acts.seq), dtype(),
                     "stage grad_output");
    ops::copy(acts.d_residual, grad_output);
  }
  slot.backward_ready = false;
  for (std::size_t l = acts.layers.size(); l-- > 0;) {
    block_backward(slot, l);
    report_final([&] { return block_offset(l); });
  }
  if (!first_stage()) {
    report_final([] { return std::int64_t{0}; });
    return acts.d_residual;
  }
  vocab_embedding_.backward(grads_.embed, acts.d_residual, slot.batch.tokens, sequence_scratch(acts));
  if (config_.learned_positions()) positions_backward(acts.d_residual, slot.batch.positions);
  report_final([] { return std::int64_t{0}; });
  return {};
}

// d_residual = d out of the MLP branch on entry (gradient of the block output); on exit it is
// the gradient of the block's MLP-norm input (mid) added on top.
void Transformer::mlp_backward(const BlockTensors& w, const BlockTensors& g,
                               const LayerActivations& a, Activations& acts) {
  const parallel::SequenceScratch scratch = sequence_scratch(acts);
  row_parallel_.backward(acts.d_mlp_act, g.down_w, g.down_b, acts.d_residual, a.mlp_act, w.down_w,
                         scratch);
  if (config_.mlp() == MlpKind::swiglu)
    ops::swiglu_backward(gate_half(acts.d_mlp_in), up_half(acts.d_mlp_in), acts.d_mlp_act,
                         gate_half(a.mlp_in), up_half(a.mlp_in));
  else
    ops::gelu_backward(acts.d_mlp_in, acts.d_mlp_act, a.mlp_in);
  column_parallel_.backward(acts.d_norm, g.mlp_in_w, g.mlp_in_b, acts.d_mlp_in, a.mlp_norm,
                            w.mlp_in_w, scratch);
  norm_backward(acts.d_residual, g.mlp_norm_w, g.mlp_norm_b, acts.d_norm, a.mid, w.mlp_norm_w,
                a.mlp_mean, a.mlp_rstd, ops::Accumulate::Yes);
}

// d_residual: gradient of the block output on entry, of the block input x on exit.
void Transformer::block_backward(Slot& slot, std::size_t layer) {
  if (dims_.recompute != Recompute::none) recompute_block(slot, layer);
  const BlockTensors& w = weights_.blocks[layer];
  const BlockTensors& g = grads_.blocks[layer];
  Activations& acts = slot.acts;
  const LayerActivations& a = acts.layers[layer];
  mlp_backward(w, g, a, acts);

  const parallel::SequenceScratch scratch = sequence_scratch(acts);
  row_parallel_.backward(acts.d_attn, g.out_w, g.out_b, acts.d_residual, a.attn, w.out_w, scratch);
  const QkvViews qkv = split_qkv(a.qkv, dims_);
  const QkvViews d_qkv = split_qkv(acts.d_qkv, dims_);
  attend_backward(d_qkv.q, d_qkv.k, d_qkv.v, as_heads(acts.d_attn, dims_.q_heads), a, qkv.q, qkv.k, qkv.v, slot.batch);
  if (config_.uses_rope()) {
    ops::rope_backward(d_qkv.q, d_qkv.q, slot.batch.positions, config_.rope);
    ops::rope_backward(d_qkv.k, d_qkv.k, slot.batch.positions, config_.rope);
  }
  column_parallel_.backward(acts.d_norm, g.qkv_w, g.qkv_b, acts.d_qkv, a.attn_norm, w.qkv_w, scratch);
  norm_backward(acts.d_residual, g.attn_norm_w, g.attn_norm_b, acts.d_norm,
                block_input(acts, layer), w.attn_norm_w, a.attn_mean, a.attn_rstd,
                ops::Accumulate::Yes);
}

// ---- incremental decoding ------------------------------------------------------------------

KvCache Transformer::make_kv_cache(std::int64_t batch, std::int64_t capacity) const {
  if (placement_.tp_size > 1 || placement_.pp_size > 1)
    fail("model: KV-cache decoding runs in a single process (tp = pp = 1), not tp = {}, pp = {}",
         placement_.tp_size, placement_.pp_size);
  if (batch <= 0 || capacity <= 0 || capacity > config_.max_seq_len)
    fail("model: KV cache of batch {} and capacity {} (capacity must be in [1, max_seq_len {}])",
         batch, capacity, config_.max_seq_len);
  KvCache cache;
  cache.arena = memory::Arena(memory::MemoryCategory::kv_cache, params_.allocator());
  cache.batch = batch;
  cache.capacity = capacity;
  const Shape shape{batch, capacity, config_.n_kv_heads, config_.head_dim};
  memory::ArenaPlan plan;
  std::vector<memory::ArenaSlot> keys, values;
  for (std::int64_t l = 0; l < config_.n_layers; ++l) {
    keys.push_back(plan.reserve(fmt::format("blocks.{}.keys", l), dtype(), shape));
    values.push_back(plan.reserve(fmt::format("blocks.{}.values", l), dtype(), shape));
  }
  cache.arena.allocate(std::move(plan));
  for (std::size_t l = 0; l < keys.size(); ++l) {
    cache.keys.push_back(cache.arena.view(keys[l]));
    cache.values.push_back(cache.arena.view(values[l]));
  }
  return cache;
}

Tensor Transformer::forward_decode(KvCache& cache, Tensor tokens) {
  if (placement_.tp_size > 1 || placement_.pp_size > 1)
    fail("model: KV-cache decoding runs in a single process (tp = pp = 1), not tp = {}, pp = {}",
         placement_.tp_size, placement_.pp_size);
  check_tokens(tokens);  // the ids were checked by the caller (generate_ids)
  if (tokens.device != Device::Cpu) fail("model: forward_decode takes token ids on the host, not {}", tokens.str());
  const std::int64_t B = tokens.size(0), Tn = tokens.size(1);
  if (B != cache.batch || static_cast<std::int64_t>(cache.keys.size()) != config_.n_layers)
    fail("model: decode batch {} does not match the KV cache (batch {}, {} layers)", B, cache.batch,
         cache.keys.size());
  if (cache.length + Tn > cache.capacity)
    fail("model: decoding {} more tokens overflows the KV cache ({} of {} positions used)", Tn,
         cache.length, cache.capacity);
  if (decode_.batch != B || decode_.seq != Tn)
    plan_activations(decode_, dims_, dtype(), B, Tn, /*for_training=*/false);

  OwnedTensor positions(DType::I32, {B, Tn});  // built here, copied to where the model lives
  for (std::int64_t i = 0; i < B * Tn; ++i)
    positions.data<std::int32_t>()[i] = static_cast<std::int32_t>(cache.length + i % Tn);
  Batch host_inputs;
  host_inputs.tokens = tokens;
  host_inputs.positions = positions;
  const Batch& inputs = on_model_device(host_inputs);
  embed(decode_.embedded, inputs.tokens, inputs.positions);
  LayerActivations& a = decode_.layers.front();
  const std::int64_t filled = cache.length + Tn;
  for (std::size_t l = 0; l < weights_.blocks.size(); ++l) {
    attention_input(weights_.blocks[l], decode_.embedded, a, inputs.positions, {});
    const QkvViews fresh = split_qkv(a.qkv, dims_);
    const Tensor keys = cache.keys[l], values = cache.values[l];
    ops::copy(keys.narrow(1, cache.length, Tn), fresh.k);
    ops::copy(values.narrow(1, cache.length, Tn), fresh.v);
    // Queries that are the last of the cached keys: kiln's kernels, whatever the library
    // (cuDNN's fused attention serves training's square batches).
    attention_core(a, keys.narrow(1, 0, filled), values.narrow(1, 0, filled), {}, {});
    attention_output_and_mlp(weights_.blocks[l], decode_.embedded, decode_, a, decode_.embedded);
  }
  head_forward(decode_, decode_.embedded);
  cache.length = filled;
  return decode_.logits.reshape({B, Tn, -1});
}

}  // namespace kiln::model
