#include "kernels/cpu/embedding.hpp"

#include <algorithm>
#include <vector>

namespace kiln::cpu {

template <class T>
void embedding_forward(RowView<T> out, const std::int64_t* ids, const T* table,
                       std::int64_t table_rows, std::int64_t first_id, bool accumulate) {
  const std::int64_t C = out.cols;
#pragma omp parallel for if (parallel_worth(out.rows * out.cols)) schedule(static)
  for (std::int64_t i = 0; i < out.rows; ++i) {
    const std::int64_t row = ids[i] - first_id;
    T* oi = out.row(i);
    const bool held = row >= 0 && row < table_rows;
    if (!held) {
      if (!accumulate) std::fill(oi, oi + C, T(0));
      continue;
    }
    const T* source = table + row * C;
    if (accumulate) {
#pragma omp simd
      for (std::int64_t c = 0; c < C; ++c) oi[c] += source[c];
    } else {
      std::copy(source, source + C, oi);
    }
  }
}

template <class T>
void embedding_backward(T* dtable, std::int64_t table_rows, RowView<const T> dout,
                        const std::int64_t* ids, std::int64_t first_id) {
  const std::int64_t C = dout.cols;
  // Counting sort of token indices by table row: bucket_start[r] .. bucket_start[r + 1].
  std::vector<std::int64_t> bucket_start(static_cast<std::size_t>(table_rows) + 1, 0);
  for (std::int64_t i = 0; i < dout.rows; ++i) {
    const std::int64_t row = ids[i] - first_id;
    if (row >= 0 && row < table_rows) ++bucket_start[static_cast<std::size_t>(row) + 1];
  }
  for (std::size_t r = 0; r < static_cast<std::size_t>(table_rows); ++r)
    bucket_start[r + 1] += bucket_start[r];
  std::vector<std::int64_t> tokens(static_cast<std::size_t>(bucket_start.back()));
  std::vector<std::int64_t> fill_at(bucket_start.begin(), bucket_start.end() - 1);
  for (std::int64_t i = 0; i < dout.rows; ++i) {
    const std::int64_t row = ids[i] - first_id;
    if (row >= 0 && row < table_rows)
      tokens[static_cast<std::size_t>(fill_at[static_cast<std::size_t>(row)]++)] = i;
  }
  // Dynamic schedule: a few frequent ids (spaces, newlines) carry most of the tokens.
#pragma omp parallel for if (parallel_worth(dout.rows * C)) schedule(dynamic, 16)
  for (std::int64_t row = 0; row < table_rows; ++row) {
    const auto begin = bucket_start[static_cast<std::size_t>(row)];
    const auto end = bucket_start[static_cast<std::size_t>(row) + 1];
    if (begin == end) continue;
    T* target = dtable + row * C;
    for (std::int64_t k = begin; k < end; ++k) {
      const T* source = dout.row(tokens[static_cast<std::size_t>(k)]);
#pragma omp simd
      for (std::int64_t c = 0; c < C; ++c) target[c] += source[c];
    }
  }
}

template void embedding_forward<float>(RowView<float>, const std::int64_t*, const float*,
                                       std::int64_t, std::int64_t, bool);
template void embedding_forward<double>(RowView<double>, const std::int64_t*, const double*,
                                        std::int64_t, std::int64_t, bool);
template void embedding_backward<float>(float*, std::int64_t, RowView<const float>,
                                        const std::int64_t*, std::int64_t);
template void embedding_backward<double>(double*, std::int64_t, RowView<const double>,
                                         std::int64_t const*, std::int64_t);

}  // namespace kiln::cpu
