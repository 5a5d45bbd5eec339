#include "kernels/cpu/flash_attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "kernels/cpu/fast_math.hpp"

namespace kiln::cpu {

namespace {

constexpr std::int64_t kTileQ = 64;
constexpr std::int64_t kTileK = 64;  // also the row stride of every score tile

std::int64_t count_tiles(std::int64_t n, std::int64_t tile) { return (n + tile - 1) / tile; }

// The parallel loops number their work (batch, head, tile) with one index, tiles fastest.
struct TileTask {
  std::int64_t batch, head, start;
};

TileTask tile_task(std::int64_t task, std::int64_t heads, std::int64_t tiles, std::int64_t tile) {
  return {task / (heads * tiles), task / tiles % heads, task % tiles * tile};
}

// The keys each query may attend to, [lo, hi) per (batch, query): a contiguous range because
// documents are runs of consecutive tokens and the causal limit is a prefix.
struct KeyRanges {
  std::int64_t queries = 0;
  std::vector<std::int64_t> lo, hi;

  std::int64_t index(std::int64_t b, std::int64_t i) const { return b * queries + i; }
  // The union of the ranges of queries [i0, i0 + n).
  std::pair<std::int64_t, std::int64_t> tile(std::int64_t b, std::int64_t i0,
                                             std::int64_t n) const {
    std::int64_t low = std::numeric_limits<std::int64_t>::max(), high = 0;
    for (std::int64_t i = i0; i < i0 + n; ++i) {
      low = std::min(low, lo[static_cast<std::size_t>(index(b, i))]);
      high = std::max(high, hi[static_cast<std::size_t>(index(b, i))]);
    }
    return {low, high};
  }
  // That range clipped to the key tile [k0, k0 + nk), as tile columns [begin, end).
  std::pair<std::int64_t, std::int64_t> columns(std::int64_t b, std::int64_t i, std::int64_t k0,
                                                std::int64_t nk) const {
    const auto at = static_cast<std::size_t>(index(b, i));
    return {std::clamp(lo[at] - k0, std::int64_t{0}, nk),
            std::clamp(hi[at] - k0, std::int64_t{0}, nk)};
  }
};

KeyRanges key_ranges(std::int64_t batch, std::int64_t tq, std::int64_t tk,
                     const std::int64_t* doc_ids, bool causal) {
  KeyRanges ranges;
  ranges.queries = tq;
  ranges.lo.assign(static_cast<std::size_t>(batch * tq), 0);
  ranges.hi.assign(static_cast<std::size_t>(batch * tq), tk);
  std::vector<std::int64_t> run_start(static_cast<std::size_t>(tk)), run_end(run_start.size());
  const std::int64_t offset = tk - tq;
  for (std::int64_t b = 0; b < batch; ++b) {
    if (doc_ids != nullptr) {
      const std::int64_t* doc = doc_ids + b * tk;
      for (std::int64_t t = 0; t < tk; ++t)
        run_start[static_cast<std::size_t>(t)] =
            t > 0 && doc[t] == doc[t - 1] ? run_start[static_cast<std::size_t>(t - 1)] : t;
      for (std::int64_t t = tk - 1; t >= 0; --t)
        run_end[static_cast<std::size_t>(t)] =
            t + 1 < tk && doc[t + 1] == doc[t] ? run_end[static_cast<std::size_t>(t + 1)] : t + 1;
    }
    for (std::int64_t i = 0; i < tq; ++i) {
      const std::int64_t position = offset + i;
      const auto at = static_cast<std::size_t>(ranges.index(b, i));
      if (doc_ids != nullptr) {
        ranges.lo[at] = run_start[static_cast<std::size_t>(position)];
        ranges.hi[at] = run_end[static_cast<std::size_t>(position)];
      }
      if (causal) ranges.hi[at] = std::min(ranges.hi[at], position + 1);
    }
  }
  return ranges;
}

// Tiles are padded to full size (kTileQ or kTileK rows, a head dim rounded up to kMicroCols)
// and zero-filled past the real data, so the micro-kernel below never needs edge cases.
constexpr std::int64_t kMicroRows = 4;
constexpr std::int64_t kMicroCols = 16;

std::int64_t padded_dim(std::int64_t D) { return (D + kMicroCols - 1) / kMicroCols * kMicroCols; }

// dst [rows, width] = rows t0 .. t0 + n of head h times factor; zero past n rows / D columns.
template <class T>
void load_rows(T* dst, std::int64_t rows, std::int64_t width, HeadView<const T> x, std::int64_t b,
               std::int64_t t0, std::int64_t n, std::int64_t h, T factor) {
  for (std::int64_t r = 0; r < rows; ++r) {
    T* out = dst + r * width;
    const T* src = r < n ? x.at(b, t0 + r, h) : nullptr;
    for (std::int64_t d = 0; d < width; ++d) out[d] = src && d < x.dim ? src[d] * factor : T(0);
  }
}

// dst [width, kTileK]: the rows as columns, so that score rows run along keys; zero-padded.
template <class T>
void load_transposed(T* dst, std::int64_t width, HeadView<const T> x, std::int64_t b,
                     std::int64_t t0, std::int64_t n, std::int64_t h) {
  std::fill(dst, dst + width * kTileK, T(0));
  for (std::int64_t r = 0; r < n; ++r) {
    const T* src = x.at(b, t0 + r, h);
    for (std::int64_t d = 0; d < x.dim; ++d) dst[d * kTileK + r] = src[d];
  }
}

// The one micro-kernel of the tile algebra:
//   c[i, j] += sum_k a[i * a_row + k * a_depth] * b[k * ldb + j]
// for i < m (a multiple of kMicroRows) and j < n (a multiple of kMicroCols). The strides of
// `a` let the same code multiply by a tile or by its transpose (P^T dO, dS^T q). A 4 x 16
// block of c stays in registers while the depth loop streams through a and b.
template <class T>
KILN_SIMD_CLONES void tile_gemm(T* c, std::int64_t ldc, const T* a, std::int64_t a_row,
                                std::int64_t a_depth, const T* b, std::int64_t ldb, std::int64_t m,
                                std::int64_t n, std::int64_t depth) {
  for (std::int64_t i0 = 0; i0 < m; i0 += kMicroRows) {
    for (std::int64_t j0 = 0; j0 < n; j0 += kMicroCols) {
      T acc[kMicroRows][kMicroCols];
      for (std::int64_t i = 0; i < kMicroRows; ++i)
        for (std::int64_t j = 0; j < kMicroCols; ++j) acc[i][j] = c[(i0 + i) * ldc + j0 + j];
      for (std::int64_t k = 0; k < depth; ++k) {
        const T* bk = b + k * ldb + j0;
        for (std::int64_t i = 0; i < kMicroRows; ++i) {
          const T ai = a[(i0 + i) * a_row + k * a_depth];
#pragma omp simd
          for (std::int64_t j = 0; j < kMicroCols; ++j) acc[i][j] += ai * bk[j];
        }
      }
      for (std::int64_t i = 0; i < kMicroRows; ++i)
        for (std::int64_t j = 0; j < kMicroCols; ++j) c[(i0 + i) * ldc + j0 + j] = acc[i][j];
    }
  }
}

template <class T>
struct AttentionShape {
  std::int64_t batch, tq, tk, heads, kv_heads, group, dim, width;
  explicit AttentionShape(HeadView<const T> q, HeadView<const T> k)
      : batch(q.batch),
        tq(q.seq),
        tk(k.seq),
        heads(q.heads),
        kv_heads(k.heads),
        group(q.heads / k.heads),
        dim(q.dim),
        width(padded_dim(q.dim)) {}
  std::int64_t lse_index(std::int64_t b, std::int64_t h, std::int64_t i) const {
    return (b * heads + h) * tq + i;
  }
};

template <class T>
std::vector<T> tile_buffer(std::int64_t rows, std::int64_t cols) {
  return std::vector<T>(static_cast<std::size_t>(rows * cols), T(0));
}

// Forward scratch: scaled q [kTileQ, W], k^T [W, kTileK], v [kTileK, W], scores/probabilities
// [kTileQ, kTileK], output accumulator [kTileQ, W], running max and sum per query.
template <class T>
struct ForwardTile {
  std::vector<T> q, kt, v, s, acc, row_max, row_sum;
  explicit ForwardTile(std::int64_t W)
      : q(tile_buffer<T>(kTileQ, W)),
        kt(tile_buffer<T>(W, kTileK)),
        v(tile_buffer<T>(kTileK, W)),
        s(tile_buffer<T>(kTileQ, kTileK)),
        acc(tile_buffer<T>(kTileQ, W)),
        row_max(kTileQ),
        row_sum(kTileQ) {}
};

// Turns row r of the score tile into probabilities under the running (max, sum) of the
// online softmax; returns the factor by which earlier output must be rescaled.
template <class T>
KILN_SIMD_CLONES T online_softmax_row(T* sr, std::int64_t begin, std::int64_t end, T& row_max,
                                      T& row_sum) {
  T tile_max = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : tile_max)
  for (std::int64_t c = begin; c < end; ++c) tile_max = std::max(tile_max, sr[c]);
  if (begin >= end) {  // no visible key in this tile: contributes nothing
    std::fill(sr, sr + kTileK, T(0));
    return T(1);
  }
  const T new_max = std::max(row_max, tile_max);
  const T correction = exp_of(row_max - new_max);  // exp(-inf) = 0 on a row's first tile
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (std::int64_t c = 0; c < kTileK; ++c) {
    const bool visible = c >= begin && c < end;
    sr[c] = visible ? exp_of(sr[c] - new_max) : T(0);
    sum += sr[c];
  }
  row_sum = row_sum * correction + sum;
  row_max = new_max;
  return correction;
}

template <class T>
KILN_SIMD_CLONES void forward_query_tile(ForwardTile<T>& tile, HeadView<T> out, T* lse,
                                         HeadView<const T> q, HeadView<const T> k,
                                         HeadView<const T> v, const KeyRanges& ranges,
                                         const AttentionShape<T>& shape, std::int64_t b,
                                         std::int64_t h, std::int64_t i0, T scale) {
  const std::int64_t W = shape.width, kvh = h / shape.group;
  const std::int64_t nq = std::min(kTileQ, shape.tq - i0);
  load_rows(tile.q.data(), kTileQ, W, q, b, i0, nq, h, scale);
  std::fill(tile.acc.begin(), tile.acc.end(), T(0));
  std::fill(tile.row_max.begin(), tile.row_max.end(), -std::numeric_limits<T>::infinity());
  std::fill(tile.row_sum.begin(), tile.row_sum.end(), T(0));
  const auto [keys_begin, keys_end] = ranges.tile(b, i0, nq);
  for (std::int64_t k0 = keys_begin; k0 < keys_end; k0 += kTileK) {
    const std::int64_t nk = std::min(kTileK, keys_end - k0);
    load_transposed(tile.kt.data(), W, k, b, k0, nk, kvh);
    load_rows(tile.v.data(), kTileK, W, v, b, k0, nk, kvh, T(1));
    // S = (scale q) k^T
    std::fill(tile.s.begin(), tile.s.end(), T(0));
    tile_gemm(tile.s.data(), kTileK, tile.q.data(), W, 1, tile.kt.data(), kTileK, kTileQ, kTileK,
              shape.dim);
    for (std::int64_t r = 0; r < kTileQ; ++r) {
      const auto [begin, end] =
          r < nq ? ranges.columns(b, i0 + r, k0, nk) : std::pair<std::int64_t, std::int64_t>{0, 0};
      const auto ru = static_cast<std::size_t>(r);
      const T correction = online_softmax_row(tile.s.data() + r * kTileK, begin, end,
                                              tile.row_max[ru], tile.row_sum[ru]);
      T* acc = tile.acc.data() + r * W;
#pragma omp simd
      for (std::int64_t d = 0; d < W; ++d) acc[d] *= correction;
    }
    // O += P v
    tile_gemm(tile.acc.data(), W, tile.s.data(), kTileK, 1, tile.v.data(), W, kTileQ, W, nk);
  }
  for (std::int64_t r = 0; r < nq; ++r) {
    const auto ru = static_cast<std::size_t>(r);
    const T sum = tile.row_sum[ru];
    // A query with no visible key (impossible with causal or document masks) outputs zeros,
    // and lse = +inf makes its recomputed probabilities zero in the backward.
    const T inv_sum = sum > T(0) ? T(1) / sum : T(0);
    T* o = out.at(b, i0 + r, h);
    const T* acc = tile.acc.data() + r * W;
#pragma omp simd
    for (std::int64_t d = 0; d < shape.dim; ++d) o[d] = acc[d] * inv_sum;
    lse[shape.lse_index(b, h, i0 + r)] =
        sum > T(0) ? tile.row_max[ru] + std::log(sum) : std::numeric_limits<T>::infinity();
  }
}

// Backward scratch: scaled q and dout [kTileQ, W], k^T and v^T [W, kTileK], k [kTileK, W],
// P and dS [kTileQ, kTileK], and two accumulators (dk and dv, or dq).
template <class T>
struct BackwardTile {
  std::vector<T> q, dout, kt, vt, k, p, ds, acc_a, acc_b;
  explicit BackwardTile(std::int64_t W)
      : q(tile_buffer<T>(kTileQ, W)),
        dout(tile_buffer<T>(kTileQ, W)),
        kt(tile_buffer<T>(W, kTileK)),
        vt(tile_buffer<T>(W, kTileK)),
        k(tile_buffer<T>(kTileK, W)),
        p(tile_buffer<T>(kTileQ, kTileK)),
        ds(tile_buffer<T>(kTileQ, kTileK)),
        acc_a(tile_buffer<T>(std::max(kTileQ, kTileK), W)),
        acc_b(tile_buffer<T>(std::max(kTileQ, kTileK), W)) {}
};

// For a (query tile, key tile) pair already loaded in `tile` (q scaled, dout, kt, vt):
//   P  = exp(q k^T - lse) inside each query's key range, 0 outside (and on padding)
//   dS = P * (dO v^T - delta)
template <class T>
KILN_SIMD_CLONES void recompute_probabilities(BackwardTile<T>& tile, const T* lse, const T* delta,
                                              const KeyRanges& ranges,
                                              const AttentionShape<T>& shape, std::int64_t b,
                                              std::int64_t h, std::int64_t i0, std::int64_t nq,
                                              std::int64_t k0, std::int64_t nk) {
  const std::int64_t W = shape.width;
  std::fill(tile.p.begin(), tile.p.end(), T(0));
  std::fill(tile.ds.begin(), tile.ds.end(), T(0));
  tile_gemm(tile.p.data(), kTileK, tile.q.data(), W, 1, tile.kt.data(), kTileK, kTileQ, kTileK,
            shape.dim);
  tile_gemm(tile.ds.data(), kTileK, tile.dout.data(), W, 1, tile.vt.data(), kTileK, kTileQ, kTileK,
            shape.dim);
  for (std::int64_t r = 0; r < kTileQ; ++r) {
    T* pr = tile.p.data() + r * kTileK;
    T* dsr = tile.ds.data() + r * kTileK;
    if (r >= nq) {  // padding rows: already zero in p; dS must be zero too
      std::fill(dsr, dsr + kTileK, T(0));
      continue;
    }
    const auto [begin, end] = ranges.columns(b, i0 + r, k0, nk);
    const std::int64_t at = shape.lse_index(b, h, i0 + r);
    const T row_lse = lse[at], row_delta = delta[at];
#pragma omp simd
    for (std::int64_t c = 0; c < kTileK; ++c) {
      const bool visible = c >= begin && c < end;
      pr[c] = visible ? exp_of(pr[c] - row_lse) : T(0);
      dsr[c] = pr[c] * (dsr[c] - row_delta);
    }
  }
}

template <class T>
void store_rows(HeadView<T> dst, const T* src, std::int64_t width, std::int64_t b, std::int64_t t0,
                std::int64_t n, std::int64_t h, T factor) {
  for (std::int64_t r = 0; r < n; ++r) {
    T* row = dst.at(b, t0 + r, h);
#pragma omp simd
    for (std::int64_t d = 0; d < dst.dim; ++d) row[d] = src[r * width + d] * factor;
  }
}

// delta [B, Hq, Tq] = rowsum(dout * out), the softmax-Jacobian term of dS.
template <class T>
std::vector<T> output_gradient_dots(HeadView<const T> dout, HeadView<const T> out,
                                    const AttentionShape<T>& shape) {
  std::vector<T> delta(static_cast<std::size_t>(shape.batch * shape.heads * shape.tq));
  const std::int64_t rows = shape.batch * shape.tq;
#pragma omp parallel for if (parallel_worth(rows * shape.heads * shape.dim)) schedule(static)
  for (std::int64_t row = 0; row < rows; ++row) {
    const std::int64_t b = row / shape.tq, i = row % shape.tq;
    for (std::int64_t h = 0; h < shape.heads; ++h) {
      const T* o = out.at(b, i, h);
      const T* g = dout.at(b, i, h);
      T dot = 0;
#pragma omp simd reduction(+ : dot)
      for (std::int64_t d = 0; d < shape.dim; ++d) dot += o[d] * g[d];
      delta[static_cast<std::size_t>(shape.lse_index(b, h, i))] = dot;
    }
  }
  return delta;
}

// Pass 1: dk, dv for one (batch, kv head, key tile), summed over the group's query heads and
// every query tile that sees these keys, in a fixed order.
template <class T>
KILN_SIMD_CLONES void backward_key_tile(BackwardTile<T>& tile, HeadView<T> dk, HeadView<T> dv,
                                        HeadView<const T> dout, HeadView<const T> q,
                                        HeadView<const T> k, HeadView<const T> v, const T* lse,
                                        const T* delta, const KeyRanges& ranges,
                                        const AttentionShape<T>& shape, std::int64_t b,
                                        std::int64_t kvh, std::int64_t k0, T scale) {
  const std::int64_t W = shape.width, nk = std::min(kTileK, shape.tk - k0);
  load_transposed(tile.kt.data(), W, k, b, k0, nk, kvh);
  load_transposed(tile.vt.data(), W, v, b, k0, nk, kvh);
  T* dk_acc = tile.acc_a.data();
  T* dv_acc = tile.acc_b.data();
  std::fill(dk_acc, dk_acc + kTileK * W, T(0));
  std::fill(dv_acc, dv_acc + kTileK * W, T(0));
  for (std::int64_t h = kvh * shape.group; h < (kvh + 1) * shape.group; ++h) {
    for (std::int64_t i0 = 0; i0 < shape.tq; i0 += kTileQ) {
      const std::int64_t nq = std::min(kTileQ, shape.tq - i0);
      const auto [keys_begin, keys_end] = ranges.tile(b, i0, nq);
      if (keys_end <= k0 || keys_begin >= k0 + nk) continue;
      load_rows(tile.q.data(), kTileQ, W, q, b, i0, nq, h, scale);
      load_rows(tile.dout.data(), kTileQ, W, dout, b, i0, nq, h, T(1));
      recompute_probabilities(tile, lse, delta, ranges, shape, b, h, i0, nq, k0, nk);
      // dv += P^T dO;  dk += dS^T (scale q)   — `a` read transposed: row stride 1, depth kTileK
      tile_gemm(dv_acc, W, tile.p.data(), 1, kTileK, tile.dout.data(), W, kTileK, W, nq);
      tile_gemm(dk_acc, W, tile.ds.data(), 1, kTileK, tile.q.data(), W, kTileK, W, nq);
    }
  }
  store_rows(dk, dk_acc, W, b, k0, nk, kvh, T(1));
  store_rows(dv, dv_acc, W, b, k0, nk, kvh, T(1));
}

// Pass 2: dq for one (batch, query head, query tile) = scale * sum over key tiles of dS k.
template <class T>
KILN_SIMD_CLONES void backward_query_tile(BackwardTile<T>& tile, HeadView<T> dq,
                                          HeadView<const T> dout, HeadView<const T> q,
                                          HeadView<const T> k, HeadView<const T> v, const T* lse,
                                          const T* delta, const KeyRanges& ranges,
                                          const AttentionShape<T>& shape, std::int64_t b,
                                          std::int64_t h, std::int64_t i0, T scale) {
  const std::int64_t W = shape.width, kvh = h / shape.group;
  const std::int64_t nq = std::min(kTileQ, shape.tq - i0);
  load_rows(tile.q.data(), kTileQ, W, q, b, i0, nq, h, scale);
  load_rows(tile.dout.data(), kTileQ, W, dout, b, i0, nq, h, T(1));
  T* dq_acc = tile.acc_a.data();
  std::fill(dq_acc, dq_acc + kTileQ * W, T(0));
  const auto [keys_begin, keys_end] = ranges.tile(b, i0, nq);
  for (std::int64_t k0 = keys_begin; k0 < keys_end; k0 += kTileK) {
    const std::int64_t nk = std::min(kTileK, keys_end - k0);
    load_transposed(tile.kt.data(), W, k, b, k0, nk, kvh);
    load_transposed(tile.vt.data(), W, v, b, k0, nk, kvh);
    load_rows(tile.k.data(), kTileK, W, k, b, k0, nk, kvh, T(1));
    recompute_probabilities(tile, lse, delta, ranges, shape, b, h, i0, nq, k0, nk);
    tile_gemm(dq_acc, W, tile.ds.data(), kTileK, 1, tile.k.data(), W, kTileQ, W, nk);  // dS k
  }
  store_rows(dq, dq_acc, W, b, i0, nq, h, scale);
}

}  // namespace

template <class T>
void flash_attention_forward(HeadView<T> out, T* lse, HeadView<const T> q, HeadView<const T> k,
                             HeadView<const T> v, const std::int64_t* doc_ids, bool causal,
                             double scale) {
  const AttentionShape<T> shape(q, k);
  const KeyRanges ranges = key_ranges(shape.batch, shape.tq, shape.tk, doc_ids, causal);
  const std::int64_t q_tiles = count_tiles(shape.tq, kTileQ);
  const std::int64_t tasks = shape.batch * shape.heads * q_tiles;
#pragma omp parallel if (parallel_worth(tasks * kTileQ * shape.tk * shape.dim / 64))
  {
    ForwardTile<T> tile(shape.width);
    // Dynamic: causal tiles late in the sequence see many more keys than early ones.
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t task = 0; task < tasks; ++task) {
      const auto [b, h, i0] = tile_task(task, shape.heads, q_tiles, kTileQ);
      forward_query_tile(tile, out, lse, q, k, v, ranges, shape, b, h, i0, static_cast<T>(scale));
    }
  }
}

template <class T>
void flash_attention_backward(HeadView<T> dq, HeadView<T> dk, HeadView<T> dv,
                              HeadView<const T> dout, HeadView<const T> q, HeadView<const T> k,
                              HeadView<const T> v, HeadView<const T> out, const T* lse,
                              const std::int64_t* doc_ids, bool causal, double scale) {
  const AttentionShape<T> shape(q, k);
  const KeyRanges ranges = key_ranges(shape.batch, shape.tq, shape.tk, doc_ids, causal);
  const std::vector<T> delta = output_gradient_dots(dout, out, shape);
  const T factor = static_cast<T>(scale);
  const std::int64_t k_tiles = count_tiles(shape.tk, kTileK);
  const std::int64_t q_tiles = count_tiles(shape.tq, kTileQ);
  const std::int64_t key_tasks = shape.batch * shape.kv_heads * k_tiles;
  const std::int64_t query_tasks = shape.batch * shape.heads * q_tiles;
#pragma omp parallel if (parallel_worth(query_tasks * kTileQ * shape.tk * shape.dim / 64))
  {
    BackwardTile<T> tile(shape.width);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t task = 0; task < key_tasks; ++task) {
      const auto [b, kvh, k0] = tile_task(task, shape.kv_heads, k_tiles, kTileK);
      backward_key_tile(tile, dk, dv, dout, q, k, v, lse, delta.data(), ranges, shape, b, kvh, k0,
                        factor);
    }
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t task = 0; task < query_tasks; ++task) {
      const auto [b, h, i0] = tile_task(task, shape.heads, q_tiles, kTileQ);
      backward_query_tile(tile, dq, dout, q, k, v, lse, delta.data(), ranges, shape, b, h, i0,
                          factor);
    }
  }
}

template void flash_attention_forward<float>(HeadView<float>, float*, HeadView<const float>,
                                             HeadView<const float>, HeadView<const float>,
                                             const std::int64_t*, bool, double);
template void flash_attention_forward<double>(HeadView<double>, double*, HeadView<const double>,
                                              HeadView<const double>, HeadView<const double>,
                                              const std::int64_t*, bool, double);
template void flash_attention_backward<float>(HeadView<float>, HeadView<float>, HeadView<float>,
                                              HeadView<const float>, HeadView<const float>,
                                              HeadView<const float>, HeadView<const float>,
                                              HeadView<const float>, const float*,
                                              const std::int64_t*, bool, double);
template void flash_attention_backward<double>(HeadView<double>, HeadView<double>, HeadView<double>,
                                               HeadView<const double>, HeadView<const double>,
                                               HeadView<const double>, HeadView<const double>,
                                               HeadView<const double>, const double*,
                                               const std::int64_t*, bool, double);

}  // namespace kiln::cpu
