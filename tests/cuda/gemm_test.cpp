// kernels/cuda/gemm.* against ops::matmul in f64: every transpose, awkward shapes, larger
// leading dimensions, alpha/beta, bias, f32 and bf16 inputs, and the contract's refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/cuda/gemm.hpp"
#include "kernels/ops.hpp"
#include "tests/core/error_testing.hpp"
#include "tests/cuda/device_buffer.hpp"
#include "tests/cuda/kernel_reference.hpp"

namespace kiln::cuda_test {
namespace {

namespace device = kiln::KILN_CUDA_NS;
using kiln::testing::error_of;

// C = alpha op(A) op(B) + beta C0 + bias in f64 from the (already rounded) f32 values.
std::vector<double> reference(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
                              double beta, const std::vector<float>& a, std::int64_t lda, const std::vector<float>& b,
                              std::int64_t ldb, const std::vector<float>& c0, const std::vector<float>& bias) {
  std::vector<double> c(static_cast<std::size_t>(m * n));
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (std::int64_t p = 0; p < k; ++p)
        sum += double(a[ta ? p * lda + i : i * lda + p]) * b[tb ? j * ldb + p : p * ldb + j];
      c[i * n + j] = alpha * sum + (beta != 0 ? beta * c0[i * n + j] : 0.0) + (bias.empty() ? 0.0 : bias[j]);
    }
  return c;
}

TEST(CudaGemm, F32AndBf16MatchTheReferenceForEveryTransposeAndAwkwardShapes) {
  device::GemmContext context;
  for (const bool bf16 : {false, true})
    for (const bool ta : {false, true})
      for (const bool tb : {false, true})
        for (const auto& [m, n, k] : {std::tuple{1, 7, 33}, std::tuple{7, 1, 5}, std::tuple{13, 9, 130}}) {
          const std::int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1;
          const std::int64_t a_rows = ta ? k : m, b_rows = tb ? n : k;
          std::vector<float> a = random_values(static_cast<std::size_t>(a_rows * lda), 1);
          std::vector<float> b = random_values(static_cast<std::size_t>(b_rows * ldb), 2);
          std::vector<float> c0 = random_values(static_cast<std::size_t>(m * n), 3), bias = random_values(n, 4);
          if (bf16) a = to_f32(to_bf16(a)), b = to_f32(to_bf16(b));
          const std::vector<double> want = reference(ta, tb, m, n, k, 0.5, 1.0, a, lda, b, ldb, c0, bias);
          std::vector<double> scale(want.size());
          for (std::size_t i = 0; i < want.size(); ++i) scale[i] = std::abs(want[i]) + 1.0;  // |terms| ~ O(1) each
          device::GemmCall call;
          call.transpose_a = ta, call.transpose_b = tb, call.m = m, call.n = n, call.k = k;
          call.alpha = 0.5f, call.beta = 1.0f;
          if (bf16) {
            DeviceBuffer<__nv_bfloat16> da(to_bf16(a)), db(to_bf16(b));
            DeviceBuffer<float> dc(c0), dbias(bias);
            call.a = {da.data(), device::GemmType::BF16, lda};
            call.b = {db.data(), device::GemmType::BF16, ldb};
            call.c = dc.data(), call.ldc = n, call.bias = dbias.data();
            context.run(call, nullptr);
            EXPECT_TRUE(all_close(dc.download(), want, 1e-5 * double(k), 1e-4)) << m << "x" << n << "x" << k;
          } else {
            DeviceBuffer<float> da(a), db(b), dc(c0), dbias(bias);
            call.a = {da.data(), device::GemmType::F32, lda};
            call.b = {db.data(), device::GemmType::F32, ldb};
            call.c = dc.data(), call.ldc = n, call.bias = dbias.data();
            context.run(call, nullptr);
            EXPECT_TRUE(all_close(dc.download(), want, 1e-5 * double(k), 1e-4)) << m << "x" << n << "x" << k;
          }
        }
  EXPECT_EQ(context.cached_algorithms(), 2u * 4u * 3u);  // one per distinct dtype/transpose/shape
}

TEST(CudaGemm, BetaZeroIgnoresNanInC) {
  device::GemmContext context;
  DeviceBuffer<float> a(std::vector<float>{1, 2, 3, 4}), b(std::vector<float>{1, 0, 0, 1});
  DeviceBuffer<float> c(std::vector<float>(4, std::nanf("")));
  device::GemmCall call;
  call.m = call.n = call.k = 2;
  call.a = {a.data(), device::GemmType::F32, 2};
  call.b = {b.data(), device::GemmType::F32, 2};
  call.c = c.data(), call.ldc = 2;
  context.run(call, nullptr);
  EXPECT_EQ(c.download(), (std::vector<float>{1, 2, 3, 4}));
}

TEST(CudaGemm, ContractViolationsNameTheField) {
  device::GemmContext context;
  DeviceBuffer<float> a(std::vector<float>(16, 1.0f)), c(std::vector<float>(16, 0.0f));
  DeviceBuffer<__nv_bfloat16> h(to_bf16(std::vector<float>(16, 1.0f)));
  const auto call_with = [&](auto edit) {
    device::GemmCall call;
    call.m = call.n = call.k = 4;
    call.a = {a.data(), device::GemmType::F32, 4};
    call.b = {a.data(), device::GemmType::F32, 4};
    call.c = c.data(), call.ldc = 4;
    edit(call);
    return error_of([&] { context.run(call, nullptr); });
  };
  EXPECT_NE(call_with([](device::GemmCall& x) { x.k = 0; }).find("m, n, k"), std::string::npos);
  EXPECT_NE(call_with([](device::GemmCall& x) { x.a.ld = 3; }).find("lda 3"), std::string::npos);
  EXPECT_NE(call_with([&](device::GemmCall& x) { x.b = {h.data(), device::GemmType::BF16, 4}; }).find("share one dtype"),
            std::string::npos);
  EXPECT_NE(call_with([&](device::GemmCall& x) { x.c = a.data(); }).find("overlaps"), std::string::npos);
#if KILN_CUDA_EMULATED
  std::vector<float> host(16, 1.0f);
  EXPECT_NE(call_with([&](device::GemmCall& x) { x.a.data = host.data(); }).find("device memory"), std::string::npos);
#endif
}

}  // namespace
}  // namespace kiln::cuda_test
