#pragma once
// Rotary position embedding, Hugging Face convention (rotate_half pairs dim i with i + D/2):
//   x [B, T, H, D], positions [B, T], inv_freq [D/2] -> y [B, T, H, D]  (y may alias x)
//   forward (direction +1):  y_i = x_i cos - x_{i+D/2} sin,  y_{i+D/2} = x_{i+D/2} cos + x_i sin
//   backward (direction -1): the transpose, i.e. the rotation by the opposite angle.
#include <cstdint>
#include <vector>

#include "kernels/cpu/views.hpp"

namespace kiln::cpu {

// theta^(-2i/D) for i < D/2, then transformers' `_compute_llama3_parameters` when llama3.
std::vector<double> rope_inv_freq(std::int64_t head_dim, double theta, bool llama3, double factor,
                                  double low_freq_factor, double high_freq_factor,
                                  double original_max_positions);

template <class T>
void rope_rotate(HeadView<T> y, HeadView<const T> x, const std::int64_t* positions,
                 const double* inv_freq, int direction);

}  // namespace kiln::cpu
