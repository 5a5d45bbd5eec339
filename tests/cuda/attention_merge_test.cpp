// The device's ops::merge_attention against the CPU op on the same f32 inputs, with the strided
// views ring attention passes (a row range of a longer output and of its statistics) and rows
// a block does not reach (-inf).
#include <gtest/gtest.h>

#include <limits>

#include "kernels/ops.hpp"
#include "tests/cuda/device_tensor.hpp"
#include "tests/cuda/kernel_reference.hpp"
#include "tests/cuda/test_device.hpp"

namespace kiln::cuda_test {
namespace {

TEST(CudaMergeAttention, MatchesTheCpuOpOnStridedViews) {
  select_the_test_device();
  constexpr std::int64_t T = 9, H = 3, D = 40;  // D not a multiple of the warp
  std::vector<float> out = random_values(2 * (T + 3) * H * D, 21, -1, 1), lse = random_values(2 * H * (T + 3), 22, -2, 2);
  const std::vector<float> part = random_values(2 * T * H * D, 23, -1, 1);
  std::vector<float> part_lse = random_values(2 * H * T, 24, -2, 2);
  part_lse[4] = -std::numeric_limits<float>::infinity();
  const Shape out_shape{2, T + 3, H, D}, lse_shape{2, H, T + 3}, part_shape{2, T, H, D}, part_lse_shape{2, H, T};
  const DeviceTensor dout(out, DType::F32, out_shape), dlse(lse, DType::F32, lse_shape);
  const DeviceTensor dpart(part, DType::F32, part_shape), dpart_lse(part_lse, DType::F32, part_lse_shape);
  OwnedTensor hout(DType::F32, out_shape), hlse(DType::F32, lse_shape), hpart(DType::F32, part_shape),
      hpart_lse(DType::F32, part_lse_shape);
  std::copy(out.begin(), out.end(), hout.data<float>());
  std::copy(lse.begin(), lse.end(), hlse.data<float>());
  std::copy(part.begin(), part.end(), hpart.data<float>());
  std::copy(part_lse.begin(), part_lse.end(), hpart_lse.data<float>());
  ops::merge_attention(dout.tensor.narrow(1, 2, T), dlse.tensor.narrow(2, 2, T), dpart.tensor, dpart_lse.tensor);
  ops::merge_attention(hout.tensor().narrow(1, 2, T), hlse.tensor().narrow(2, 2, T), hpart.tensor(), hpart_lse.tensor());
  const std::vector<double> want_out(hout.data<float>(), hout.data<float>() + hout.numel());
  const std::vector<double> want_lse(hlse.data<float>(), hlse.data<float>() + hlse.numel());
  EXPECT_TRUE(all_close(dout.download(), want_out, kF32Relative, 1e-6));
  EXPECT_TRUE(all_close(dlse.download(), want_lse, kF32Relative, 1e-6));
}

}  // namespace
}  // namespace kiln::cuda_test
