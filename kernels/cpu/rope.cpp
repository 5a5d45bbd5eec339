#include "kernels/cpu/rope.hpp"

#include <cmath>
#include <numbers>

namespace kiln::cpu {

std::vector<double> rope_inv_freq(std::int64_t head_dim, double theta, bool llama3, double factor,
                                  double low_freq_factor, double high_freq_factor,
                                  double original_max_positions) {
  const std::int64_t half = head_dim / 2;
  std::vector<double> inv_freq(static_cast<std::size_t>(half));
  for (std::int64_t i = 0; i < half; ++i)
    inv_freq[static_cast<std::size_t>(i)] =
        1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(head_dim));
  if (!llama3) return inv_freq;
  // Llama 3.1: long wavelengths (low frequencies) are slowed down by `factor`, short ones
  // kept, and the band in between interpolated smoothly.
  const double low_freq_wavelen = original_max_positions / low_freq_factor;
  const double high_freq_wavelen = original_max_positions / high_freq_factor;
  for (double& freq : inv_freq) {
    const double wavelen = 2.0 * std::numbers::pi / freq;
    if (wavelen > low_freq_wavelen) {
      freq /= factor;
    } else if (wavelen >= high_freq_wavelen) {
      const double smooth = (original_max_positions / wavelen - low_freq_factor) /
                            (high_freq_factor - low_freq_factor);
      freq = (1.0 - smooth) * freq / factor + smooth * freq;
    }
  }
  return inv_freq;
}

template <class T>
void rope_rotate(HeadView<T> y, HeadView<const T> x, const std::int64_t* positions,
                 const double* inv_freq, int direction) {
  const std::int64_t half = x.dim / 2;
  const std::int64_t tokens = x.batch * x.seq;
#pragma omp parallel if (parallel_worth(tokens * x.heads * x.dim))
  {
    std::vector<T> cos_table(static_cast<std::size_t>(half)), sin_table(cos_table.size());
#pragma omp for schedule(static)
    for (std::int64_t token = 0; token < tokens; ++token) {
      const std::int64_t b = token / x.seq, t = token % x.seq;
      // Angles in double: positions up to ~1e5 times frequencies near 1 lose digits in f32.
      const auto position = static_cast<double>(positions[token]);
      for (std::int64_t i = 0; i < half; ++i) {
        const double angle = position * inv_freq[i];
        cos_table[static_cast<std::size_t>(i)] = static_cast<T>(std::cos(angle));
        sin_table[static_cast<std::size_t>(i)] =
            static_cast<T>(direction > 0 ? std::sin(angle) : -std::sin(angle));
      }
      const T* cos_p = cos_table.data();
      const T* sin_p = sin_table.data();
      for (std::int64_t h = 0; h < x.heads; ++h) {
        const T* xh = x.at(b, t, h);
        T* yh = y.at(b, t, h);
#pragma omp simd
        for (std::int64_t i = 0; i < half; ++i) {
          const T first = xh[i], second = xh[i + half];
          yh[i] = first * cos_p[i] - second * sin_p[i];
          yh[i + half] = second * cos_p[i] + first * sin_p[i];
        }
      }
    }
  }
}

template void rope_rotate<float>(HeadView<float>, HeadView<const float>, const std::int64_t*,
                                 const double*, int);
template void rope_rotate<double>(HeadView<double>, HeadView<const double>, const std::int64_t*,
                                  const double*, int);

}  // namespace kiln::cpu
