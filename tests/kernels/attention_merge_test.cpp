// ops::merge_attention: the attention of queries over keys split into blocks, each block's
// (out, lse) merged in turn, is the attention over all the keys (f64 to the last bits that
// rounding allows); with strided views as ring attention uses them (a row range of a wider
// output, statistics of a longer lse), and rows a block does not reach (-inf) left alone.
#include <gtest/gtest.h>

#include <limits>

#include "kernels/ops.hpp"
#include "tests/kernels/kernel_testing.hpp"

namespace kiln {
namespace {

using testing::random_tensor;
using testing::relative_error;
using testing::to_vector;

constexpr std::int64_t B = 2, T = 5, H = 4, Hkv = 2, D = 8;

TEST(MergeAttention, BlocksMergedInAnyOrderEqualAttentionOverAllKeys) {
  const OwnedTensor q = random_tensor(DType::F64, {B, T, H, D}, 1);
  const OwnedTensor k = random_tensor(DType::F64, {B, 3 * T, Hkv, D}, 2), v = random_tensor(DType::F64, {B, 3 * T, Hkv, D}, 3);
  const ops::AttentionOptions full{.causal = false};
  OwnedTensor want(DType::F64, {B, T, H, D}), want_lse(DType::F64, {B, H, T});
  ops::flash_attention_forward(want.tensor(), want_lse.tensor(), q.tensor(), k.tensor(), v.tensor(), {}, full);
  // Blocks of T keys, merged last-first; the running state starts with no key seen.
  OwnedTensor out(DType::F64, {B, T, H, D}), lse(DType::F64, {B, H, T});
  for (std::int64_t i = 0; i < lse.numel(); ++i) lse.data<double>()[i] = -std::numeric_limits<double>::infinity();
  for (std::int64_t block = 2; block >= 0; --block) {
    OwnedTensor part(DType::F64, {B, T, H, D}), part_lse(DType::F64, {B, H, T});
    ops::flash_attention_forward(part.tensor(), part_lse.tensor(), q.tensor(), k.tensor().narrow(1, block * T, T),
                                 v.tensor().narrow(1, block * T, T), {}, full);
    ops::merge_attention(out.tensor(), lse.tensor(), part.tensor(), part_lse.tensor());
  }
  EXPECT_LT(relative_error(to_vector(out.tensor()), to_vector(want.tensor())), 1e-14);
  EXPECT_LT(relative_error(to_vector(lse.tensor()), to_vector(want_lse.tensor())), 1e-14);
}

TEST(MergeAttention, StridedViewsAndRowsWithoutKeys) {
  // The running state: rows [1, 1 + T) of a longer output and of its statistics.
  OwnedTensor out = random_tensor(DType::F32, {1, T + 2, H, D}, 4), lse = random_tensor(DType::F32, {1, H, T + 2}, 5);
  const OwnedTensor part = random_tensor(DType::F32, {1, T, H, D}, 6);
  OwnedTensor part_lse = random_tensor(DType::F32, {1, H, T}, 7);
  for (std::int64_t h = 0; h < H; ++h) part_lse.data<float>()[h * T + 2] = -std::numeric_limits<float>::infinity();
  const std::vector<double> before = to_vector(out.tensor()), before_lse = to_vector(lse.tensor());
  ops::merge_attention(out.tensor().narrow(1, 1, T), lse.tensor().narrow(2, 1, T), part.tensor(), part_lse.tensor());
  const std::vector<double> after = to_vector(out.tensor()), after_lse = to_vector(lse.tensor());
  for (std::int64_t t = 0; t < T + 2; ++t)
    for (std::int64_t h = 0; h < H; ++h) {
      const double l = before_lse[h * (T + 2) + t], after_l = after_lse[h * (T + 2) + t];
      const bool touched = t >= 1 && t <= T && t != 3;  // row 3 is part's row 2: -inf, no keys
      if (!touched) {
        EXPECT_EQ(after_l, l) << "t " << t << " h " << h;
        for (std::int64_t d = 0; d < D; ++d) EXPECT_EQ(after[(t * H + h) * D + d], before[(t * H + h) * D + d]);
        continue;
      }
      const double p = part_lse.data<float>()[h * T + t - 1];
      const double merged = std::log(std::exp(l) + std::exp(p));
      EXPECT_NEAR(after_l, merged, 1e-6);
      for (std::int64_t d = 0; d < D; ++d) {
        const double want = std::exp(l - merged) * before[(t * H + h) * D + d] +
                            std::exp(p - merged) * part.data<float>()[((t - 1) * H + h) * D + d];
        EXPECT_NEAR(after[(t * H + h) * D + d], want, 1e-6);
      }
    }
}

}  // namespace
}  // namespace kiln
