#include "kernels/cpu/attention_merge.hpp"

#include <cmath>
#include <limits>

namespace kiln::cpu {

template <class T>
void merge_attention(HeadView<T> out, T* lse, StatStrides lse_strides, HeadView<const T> part, const T* part_lse,
                     StatStrides part_strides) {
  const std::int64_t rows = out.batch * out.seq * out.heads;
#pragma omp parallel for if (parallel_worth(rows * out.dim))
  for (std::int64_t row = 0; row < rows; ++row) {
    const std::int64_t b = row / (out.seq * out.heads), t = row / out.heads % out.seq, h = row % out.heads;
    T& running = lse[b * lse_strides.batch + h * lse_strides.head + t * lse_strides.seq];
    const T incoming = part_lse[b * part_strides.batch + h * part_strides.head + t * part_strides.seq];
    if (incoming == -std::numeric_limits<T>::infinity()) continue;
    const T merged = running == -std::numeric_limits<T>::infinity()
                         ? incoming
                         : std::max(running, incoming) + std::log1p(std::exp(-std::abs(running - incoming)));
    const T keep = running == -std::numeric_limits<T>::infinity() ? T(0) : std::exp(running - merged);
    const T take = std::exp(incoming - merged);
    T* o = out.at(b, t, h);
    const T* p = part.at(b, t, h);
    for (std::int64_t d = 0; d < out.dim; ++d) o[d] = keep * o[d] + take * p[d];
    running = merged;
  }
}

template void merge_attention<float>(HeadView<float>, float*, StatStrides, HeadView<const float>, const float*,
                                     StatStrides);
template void merge_attention<double>(HeadView<double>, double*, StatStrides, HeadView<const double>, const double*,
                                      StatStrides);

}  // namespace kiln::cpu
