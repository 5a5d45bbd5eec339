#include "trainer/model/transformer.hpp"

#include <fmt/format.h>

#include <string>

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

QkvViews split_qkv(const Tensor& qkv, const ModelConfig& c) {
  return {heads_view(qkv, 0, c.n_heads, c.head_dim),
          heads_view(qkv, c.q_dim(), c.n_kv_heads, c.head_dim),
          heads_view(qkv, c.q_dim() + c.kv_dim(), c.n_kv_heads, c.head_dim)};
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

std::vector<std::int64_t> read_indices(const Tensor& ids, const char* what) {
  if (!ids.is_contiguous()) fail("model: batch.{} {} must be contiguous", what, ids.str());
  std::vector<std::int64_t> values(static_cast<std::size_t>(ids.numel()));
  const auto convert = [&](auto* source) {
    for (std::size_t i = 0; i < values.size(); ++i)
      values[i] = static_cast<std::int64_t>(source[i]);
  };
  switch (ids.dtype) {
    case DType::I32:
      convert(ids.data<std::int32_t>());
      break;
    case DType::U32:
      convert(ids.data<std::uint32_t>());
      break;
    case DType::I64:
      convert(ids.data<std::int64_t>());
      break;
    case DType::U16:
      convert(ids.data<std::uint16_t>());
      break;
    default:
      fail("model: batch.{} is {}; index tensors are i32, u32, i64 or u16", what, ids.str());
  }
  return values;
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
  ModelTensors t;
  t.embed = pick.get("embed.weight");
  t.pos_embed = pick.optional("pos_embed.weight");
  for (std::int64_t layer = 0; layer < c.n_layers; ++layer)
    t.blocks.push_back(gather_block(pick, c, layer));
  t.final_norm_w = pick.get("final_norm.weight");
  t.final_norm_b = pick.optional("final_norm.bias");
  t.lm_head = c.tie_embeddings ? t.embed : pick.get("lm_head.weight");
  return t;
}

}  // namespace

Transformer::Transformer(const ModelConfig& config, DType dtype)
    : config_(config.resolved()), params_(config_, dtype) {
  weights_ = gather(params_, config_, false);
  grads_ = gather(params_, config_, true);
}

void Transformer::init_weights(std::uint64_t run_seed) {
  init_parameters(params_, config_, run_seed);
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

// out [B, T, C] = embed[tokens] (+ pos_embed[positions])
void Transformer::embed(Tensor out, Tensor tokens, Tensor positions) const {
  ops::embedding_forward(out, tokens, weights_.embed);
  if (config_.learned_positions())
    ops::embedding_forward(out, positions, weights_.pos_embed, ops::Accumulate::Yes);
}

// x [B, T, C] -> a.attn_norm, a.qkv (q and k rotated in place when the family uses RoPE)
void Transformer::attention_input(const BlockTensors& w, Tensor x, LayerActivations& a,
                                  Tensor positions) const {
  norm_forward(a.attn_norm, a.attn_mean, a.attn_rstd, x, w.attn_norm_w, w.attn_norm_b);
  ops::linear_forward(a.qkv, a.attn_norm, w.qkv_w, w.qkv_b);
  if (!config_.uses_rope()) return;
  const QkvViews qkv = split_qkv(a.qkv, config_);
  ops::rope_forward(qkv.q, qkv.q, positions, config_.rope);
  ops::rope_forward(qkv.k, qkv.k, positions, config_.rope);
}

// a.attn [B, Tq, Hq*Dh], a.attn_lse <- attention of the queries in a.qkv over k, v
// [B, Tk, Hkv, Dh] (the block's own keys in training, the KV cache when decoding).
void Transformer::attention_core(LayerActivations& a, Tensor k, Tensor v, Tensor doc_ids) const {
  const QkvViews qkv = split_qkv(a.qkv, config_);
  ops::flash_attention_forward(as_heads(a.attn, config_.n_heads), a.attn_lse, qkv.q, k, v, doc_ids,
                               {.causal = true, .softmax_scale = 0.0});
}

// x, a.attn -> a.mid = x + attn proj; MLP; y = a.mid + MLP out. y may alias x (inference).
void Transformer::attention_output_and_mlp(const BlockTensors& w, Tensor x, LayerActivations& a,
                                           Tensor y) const {
  ops::linear_forward(a.mid, a.attn, w.out_w, w.out_b);
  ops::add(a.mid, a.mid, x);
  norm_forward(a.mlp_norm, a.mlp_mean, a.mlp_rstd, a.mid, w.mlp_norm_w, w.mlp_norm_b);
  ops::linear_forward(a.mlp_in, a.mlp_norm, w.mlp_in_w, w.mlp_in_b);
  if (config_.mlp() == MlpKind::swiglu)
    ops::swiglu_forward(a.mlp_act, gate_half(a.mlp_in), up_half(a.mlp_in));
  else
    ops::gelu_forward(a.mlp_act, a.mlp_in);
  ops::linear_forward(y, a.mlp_act, w.down_w, w.down_b);
  ops::add(y, y, a.mid);
}

// x [B, T, C] -> final norm -> logits [B*T, Vp]
void Transformer::head_forward(Activations& acts, Tensor x) const {
  norm_forward(acts.final_norm, acts.final_mean, acts.final_rstd, x, weights_.final_norm_w,
               weights_.final_norm_b);
  ops::linear_forward(acts.logits, acts.final_norm, weights_.lm_head);
}

// ---- training forward ----------------------------------------------------------------------

void Transformer::check_batch(const Batch& batch) const {
  const Tensor& tokens = batch.tokens;
  if (!tokens.defined() || tokens.rank() != 2 || tokens.numel() == 0)
    fail("model: batch.tokens is {}; expected a non-empty [B, T]", tokens.str());
  const std::int64_t T = tokens.size(1);
  if (T > config_.max_seq_len)
    fail("model: sequence length {} exceeds max_seq_len {}", T, config_.max_seq_len);
  const auto check_same_shape = [&](const Tensor& t, const char* name) {
    if (t.defined() && t.shape != tokens.shape)
      fail("model: batch.{} is {}; expected {} like batch.tokens", name, t.str(),
           tokens.shape.str());
  };
  check_same_shape(batch.targets, "targets");
  check_same_shape(batch.loss_mask, "loss_mask");
  check_same_shape(batch.doc_ids, "doc_ids");
  check_same_shape(batch.positions, "positions");
  // Padded vocabulary rows are not tokens: an id there would read a zero embedding silently.
  for (const std::int64_t id : read_indices(tokens, "tokens"))
    if (id < 0 || id >= config_.vocab_size)
      fail("model: token id {} is outside the vocabulary of {} tokens", id, config_.vocab_size);
}

// Positions 0..T-1 per row, restarting at every document boundary when packed.
void Transformer::prepare_positions(const Batch& batch) {
  if (batch.positions.defined()) {
    positions_ = batch.positions;
    return;
  }
  positions_ = train_.positions;
  auto* out = positions_.data<std::int32_t>();
  const std::int64_t B = positions_.size(0), T = positions_.size(1);
  const std::vector<std::int64_t> docs = batch.doc_ids.defined()
                                             ? read_indices(batch.doc_ids, "doc_ids")
                                             : std::vector<std::int64_t>{};
  for (std::int64_t b = 0; b < B; ++b) {
    std::int32_t position = 0;
    for (std::int64_t t = 0; t < T; ++t) {
      const std::size_t i = static_cast<std::size_t>(b * T + t);
      if (t > 0 && !docs.empty() && docs[i] != docs[i - 1]) position = 0;
      out[i] = position++;
    }
  }
}

Tensor Transformer::block_input(std::size_t layer) const {
  return layer == 0 ? train_.embedded : train_.layers[layer - 1].out;
}

ops::LossSum Transformer::forward(const Batch& batch) {
  check_batch(batch);
  logits_valid_ = backward_ready_ = false;  // until this forward has succeeded
  const std::int64_t B = batch.tokens.size(0), T = batch.tokens.size(1);
  if (train_.batch != B || train_.seq != T)
    train_ = plan_activations(config_, dtype(), B, T, /*for_training=*/true);
  batch_ = batch;
  prepare_positions(batch);

  embed(train_.embedded, batch.tokens, positions_);
  for (std::size_t l = 0; l < train_.layers.size(); ++l) {
    LayerActivations& a = train_.layers[l];
    attention_input(weights_.blocks[l], block_input(l), a, positions_);
    const QkvViews qkv = split_qkv(a.qkv, config_);
    attention_core(a, qkv.k, qkv.v, batch.doc_ids);
    attention_output_and_mlp(weights_.blocks[l], block_input(l), a, a.out);
  }
  head_forward(train_, train_.layers.back().out);
  logits_valid_ = true;
  if (!batch.targets.defined()) return {};
  const ops::LossSum loss = ops::cross_entropy_forward(
      train_.losses, train_.lse, train_.logits, batch.targets, batch.loss_mask, config_.vocab_size);
  backward_ready_ = true;
  return loss;
}

Tensor Transformer::logits() const {
  if (!logits_valid_)
    fail("model: logits are not available (no forward yet, or backward reused the buffer)");
  return train_.logits.reshape({train_.batch, train_.seq, -1});
}

// ---- backward ------------------------------------------------------------------------------

void Transformer::backward(double grad_scale) {
  if (!backward_ready_) fail("model: backward() needs a forward() with targets before it");
  Activations& acts = train_;
  const Tensor last = acts.layers.back().out;
  // dlogits overwrite the logits in place: probabilities are formed once, from lse.
  ops::cross_entropy_backward(acts.logits, acts.logits, batch_.targets, acts.lse, batch_.loss_mask,
                              config_.vocab_size, grad_scale);
  logits_valid_ = false;
  backward_ready_ = false;
  ops::linear_backward(acts.d_norm, grads_.lm_head, {}, acts.logits, acts.final_norm,
                       weights_.lm_head);
  norm_backward(acts.d_residual, grads_.final_norm_w, grads_.final_norm_b, acts.d_norm, last,
                weights_.final_norm_w, acts.final_mean, acts.final_rstd, ops::Accumulate::No);
  for (std::size_t l = acts.layers.size(); l-- > 0;)
    block_backward(l, block_input(l), acts.layers[l]);
  ops::embedding_backward(grads_.embed, acts.d_residual, batch_.tokens);
  if (config_.learned_positions())
    ops::embedding_backward(grads_.pos_embed, acts.d_residual, positions_);
}

// d_residual = d out of the MLP branch on entry (gradient of the block output); on exit it is
// the gradient of the block's MLP-norm input (mid) added on top.
void Transformer::mlp_backward(const BlockTensors& w, const BlockTensors& g,
                               const LayerActivations& a) {
  Activations& acts = train_;
  ops::linear_backward(acts.d_mlp_act, g.down_w, g.down_b, acts.d_residual, a.mlp_act, w.down_w);
  if (config_.mlp() == MlpKind::swiglu)
    ops::swiglu_backward(gate_half(acts.d_mlp_in), up_half(acts.d_mlp_in), acts.d_mlp_act,
                         gate_half(a.mlp_in), up_half(a.mlp_in));
  else
    ops::gelu_backward(acts.d_mlp_in, acts.d_mlp_act, a.mlp_in);
  ops::linear_backward(acts.d_norm, g.mlp_in_w, g.mlp_in_b, acts.d_mlp_in, a.mlp_norm, w.mlp_in_w);
  norm_backward(acts.d_residual, g.mlp_norm_w, g.mlp_norm_b, acts.d_norm, a.mid, w.mlp_norm_w,
                a.mlp_mean, a.mlp_rstd, ops::Accumulate::Yes);
}

// d_residual: gradient of the block output on entry, of the block input x on exit.
void Transformer::block_backward(std::size_t layer, Tensor x, const LayerActivations& a) {
  const BlockTensors& w = weights_.blocks[layer];
  const BlockTensors& g = grads_.blocks[layer];
  Activations& acts = train_;
  mlp_backward(w, g, a);

  ops::linear_backward(acts.d_attn, g.out_w, g.out_b, acts.d_residual, a.attn, w.out_w);
  const QkvViews qkv = split_qkv(a.qkv, config_);
  const QkvViews d_qkv = split_qkv(acts.d_qkv, config_);
  ops::flash_attention_backward(d_qkv.q, d_qkv.k, d_qkv.v, as_heads(acts.d_attn, config_.n_heads),
                                qkv.q, qkv.k, qkv.v, as_heads(a.attn, config_.n_heads), a.attn_lse,
                                batch_.doc_ids, {.causal = true, .softmax_scale = 0.0});
  if (config_.uses_rope()) {
    ops::rope_backward(d_qkv.q, d_qkv.q, positions_, config_.rope);
    ops::rope_backward(d_qkv.k, d_qkv.k, positions_, config_.rope);
  }
  ops::linear_backward(acts.d_norm, g.qkv_w, g.qkv_b, acts.d_qkv, a.attn_norm, w.qkv_w);
  norm_backward(acts.d_residual, g.attn_norm_w, g.attn_norm_b, acts.d_norm, x, w.attn_norm_w,
                a.attn_mean, a.attn_rstd, ops::Accumulate::Yes);
}

// ---- incremental decoding ------------------------------------------------------------------

KvCache Transformer::make_kv_cache(std::int64_t batch, std::int64_t capacity) const {
  if (batch <= 0 || capacity <= 0 || capacity > config_.max_seq_len)
    fail("model: KV cache of batch {} and capacity {} (capacity must be in [1, max_seq_len {}])",
         batch, capacity, config_.max_seq_len);
  KvCache cache;
  cache.batch = batch;
  cache.capacity = capacity;
  const Shape shape{batch, capacity, config_.n_kv_heads, config_.head_dim};
  for (std::int64_t l = 0; l < config_.n_layers; ++l) {
    cache.keys.emplace_back(dtype(), shape);
    cache.values.emplace_back(dtype(), shape);
  }
  return cache;
}

Tensor Transformer::forward_decode(KvCache& cache, Tensor tokens) {
  Batch prompt;
  prompt.tokens = tokens;
  check_batch(prompt);
  const std::int64_t B = tokens.size(0), Tn = tokens.size(1);
  if (B != cache.batch || static_cast<std::int64_t>(cache.keys.size()) != config_.n_layers)
    fail("model: decode batch {} does not match the KV cache (batch {}, {} layers)", B, cache.batch,
         cache.keys.size());
  if (cache.length + Tn > cache.capacity)
    fail("model: decoding {} more tokens overflows the KV cache ({} of {} positions used)", Tn,
         cache.length, cache.capacity);
  if (decode_.batch != B || decode_.seq != Tn)
    decode_ = plan_activations(config_, dtype(), B, Tn, /*for_training=*/false);

  auto* positions = decode_.positions.data<std::int32_t>();
  for (std::int64_t i = 0; i < B * Tn; ++i)
    positions[i] = static_cast<std::int32_t>(cache.length + i % Tn);
  embed(decode_.embedded, tokens, decode_.positions);
  LayerActivations& a = decode_.layers.front();
  const std::int64_t filled = cache.length + Tn;
  for (std::size_t l = 0; l < weights_.blocks.size(); ++l) {
    attention_input(weights_.blocks[l], decode_.embedded, a, decode_.positions);
    const QkvViews fresh = split_qkv(a.qkv, config_);
    const Tensor keys = cache.keys[l].tensor(), values = cache.values[l].tensor();
    ops::copy(keys.narrow(1, cache.length, Tn), fresh.k);
    ops::copy(values.narrow(1, cache.length, Tn), fresh.v);
    attention_core(a, keys.narrow(1, 0, filled), values.narrow(1, 0, filled), {});
    attention_output_and_mlp(weights_.blocks[l], decode_.embedded, a, decode_.embedded);
  }
  head_forward(decode_, decode_.embedded);
  cache.length = filled;
  return decode_.logits.reshape({B, Tn, -1});
}

}  // namespace kiln::model
