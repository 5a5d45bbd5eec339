#pragma once
// kiln::ops — Rotary position embedding (Llama), forward and backward.
// Conventions shared by every family are in kernels/ops.hpp.
#include <cstdint>
#include <vector>

#include "kernels/ops/accumulate.hpp"
#include "kernels/tensor.hpp"

namespace kiln::ops {

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

}  // namespace kiln::ops
