#pragma once
// The activations arena (DESIGN.md §4): every tensor the forward pass keeps for the backward
// pass, and the backward scratch, carved out of one host buffer planned once per
// (micro-batch, seq_len): forward() and backward() allocate no activation memory.
//
// Per block l (input x_l = l == 0 ? embedded : layers[l-1].out), [B, T, ...]:
//   attn_norm [B,T,C], attn_mean/attn_rstd [B*T]   norm before attention (mean: LayerNorm only)
//   qkv       [B,T,(Hq+2Hkv)*Dh]                   fused projection, q and k after RoPE
//   attn      [B,T,Hq*Dh], attn_lse [B,Hq,T]       attention output, its logsumexp
//   mid       [B,T,C]                              x_l + attention projection
//   mlp_norm  [B,T,C], mlp_mean/mlp_rstd [B*T]
//   mlp_in    [B,T,F] (GELU input) or [B,T,2F] (gate|up)
//   mlp_act   [B,T,F]                              GELU / SwiGLU output
//   out       [B,T,C]                              mid + MLP projection = x_{l+1}
// An inference arena (kept_layers = 1) reuses one block's slots for every layer and writes
// the residual stream back into `embedded`.
#include <cstdint>
#include <vector>

#include "kernels/tensor.hpp"
#include "trainer/model/model_config.hpp"

namespace kiln::model {

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
  bool for_training = false;

  Tensor positions;  // [B, T] i32: positions used when the batch gives none
  Tensor embedded;   // [B, T, C] the residual stream entering block 0
  std::vector<LayerActivations> layers;
  Tensor final_norm, final_mean, final_rstd;  // [B, T, C], [B*T], [B*T]
  Tensor logits;                              // [B*T, Vp]; turned into dlogits in place by backward
  Tensor lse;     // [B*T] logsumexp over the real vocabulary (cross-entropy)
  Tensor losses;  // [B*T] per-token loss (0 where masked)

  // Backward scratch, shared by all blocks (training arenas only).
  Tensor d_residual;  // [B, T, C] gradient of the residual stream
  Tensor d_norm;      // [B, T, C] gradient of a norm's output
  Tensor d_qkv;       // [B, T, (Hq+2Hkv)*Dh]
  Tensor d_attn;      // [B, T, Hq*Dh]
  Tensor d_mlp_in;    // [B, T, F or 2F]
  Tensor d_mlp_act;   // [B, T, F]

  std::size_t bytes() const { return storage.size(); }
  HostBuffer storage;
};

// Plans and allocates the arena. `for_training` keeps every block's activations and adds the
// backward scratch; otherwise one block's worth is reused through the stack.
Activations plan_activations(const ModelConfig& config, DType dtype, std::int64_t batch,
                             std::int64_t seq, bool for_training);

}  // namespace kiln::model
