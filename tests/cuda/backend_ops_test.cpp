// kiln::ops on Device::Cuda tensors, through the CUDA backend (kernels/cuda/backend.hpp):
// memory from the CUDA allocator, copies both ways with conversion, and each op against the
// same op on the CPU in f64. On the emulated device here; on the GPU in kiln_cuda_tests.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/backend.hpp"
#include "kernels/cuda/backend_registry.hpp"
#include "kernels/memory/device_buffer.hpp"
#include "kernels/ops.hpp"
#include "tests/core/error_testing.hpp"
#include "tests/cuda/device_tensor.hpp"
#include "tests/cuda/kernel_reference.hpp"
#include "tests/cuda/test_device.hpp"

namespace kiln::cuda_test {
namespace {

using kiln::testing::error_of;

// The tolerance of a result stored in `dtype` relative to an f64 reference over the same
// (already rounded) inputs: a few fp32 ulp, plus one bf16 rounding of the output.
double tolerance(DType dtype) { return dtype == DType::BF16 ? kBF16Relative : kF32Relative; }

::testing::AssertionResult matches(const std::vector<float>& got, const OwnedTensor& want, DType dtype,
                                   double absolute = 1e-6) {
  return all_close(got, values_of(want), tolerance(dtype), absolute);
}

class CudaBackendOps : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override { select_the_test_device(); }
};

TEST_P(CudaBackendOps, CopyRoundTripsAndConverts) {
  const DType dtype = GetParam();
  const std::vector<float> values = random_values(37, 1);
  const DeviceTensor x(values, dtype, {37});
  EXPECT_EQ(x.tensor.device, Device::Cuda);
  const std::vector<float> back = x.download();
  EXPECT_EQ(back, as_stored(values, dtype));
  // Device to device, converting: f32 <-> bf16 rounds exactly as the host conversion does.
  const DType other = dtype == DType::F32 ? DType::BF16 : DType::F32;
  const DeviceTensor y(other, {37});
  ops::copy(y, x);
  EXPECT_EQ(y.download(), as_stored(as_stored(values, dtype), other));
  // A strided host view uploads through a contiguous staging copy.
  OwnedTensor wide(DType::F32, {37, 2});
  for (int i = 0; i < 37; ++i) wide.data<float>()[2 * i] = values[static_cast<std::size_t>(i)];
  const Tensor strided(wide.tensor().ptr, DType::F32, Shape{37}, Shape{2}, Device::Cpu);
  const DeviceTensor z(dtype, {37});
  ops::copy(z, strided);
  EXPECT_EQ(z.download(), as_stored(values, dtype));
}

// The KV cache's write while decoding: a column block of one buffer (k of the fused qkv rows)
// into a row block of another, equal dtypes, strides on both sides; bytes around stay.
TEST_P(CudaBackendOps, CopyBetweenStridedDeviceViewsMovesExactlyTheViewedElements) {
  const DType dtype = GetParam();
  const std::vector<float> source = random_values(2 * 3 * 24, 2), before = random_values(2 * 7 * 8, 3);
  const DeviceTensor qkv(source, dtype, {2, 3, 24}), cache(before, dtype, {2, 7, 8});
  const Tensor keys = qkv.tensor.narrow(2, 8, 8), slot = cache.tensor.narrow(1, 4, 3);
  ops::copy(slot, keys);
  // The same copy between host tensors is the reference.
  OwnedTensor host_qkv(DType::F32, {2, 3, 24}), host_cache(DType::F32, {2, 7, 8});
  ops::copy(host_qkv, qkv.tensor);
  const std::vector<float> stored_before = as_stored(before, dtype);
  std::copy(stored_before.begin(), stored_before.end(), host_cache.data<float>());
  ops::copy(host_cache.tensor().narrow(1, 4, 3), host_qkv.tensor().narrow(2, 8, 8));
  EXPECT_EQ(cache.download(), std::vector<float>(host_cache.data<float>(), host_cache.data<float>() + host_cache.numel()));
  // Converting between strided views is refused with the tensors named, not done wrong.
  const DeviceTensor other(dtype == DType::F32 ? DType::BF16 : DType::F32, {2, 3, 8});
  EXPECT_NE(error_of([&] { ops::copy(other.tensor, keys); }).find("contiguous"), std::string::npos);
}

TEST_P(CudaBackendOps, ZeroFillAndAdd) {
  const DType dtype = GetParam();
  const std::vector<float> a = random_values(1030, 2), b = random_values(1030, 3);
  const DeviceTensor da(a, dtype, {10, 103}), db(b, dtype, {10, 103}), out(dtype, {10, 103});
  ops::add(out, da, db);
  const std::vector<float> sa = as_stored(a, dtype), sb = as_stored(b, dtype);
  std::vector<double> want(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) want[i] = static_cast<double>(sa[i]) + sb[i];
  EXPECT_TRUE(all_close(out.download(), want, tolerance(dtype)));
  ops::add_to(out, da);  // out = a + b + a
  for (std::size_t i = 0; i < a.size(); ++i) want[i] = static_cast<double>(as_stored({static_cast<float>(want[i])}, dtype)[0]) + sa[i];
  EXPECT_TRUE(all_close(out.download(), want, tolerance(dtype)));
  ops::zero(out);
  EXPECT_EQ(out.download(), std::vector<float>(a.size(), 0.0f));
  ops::fill(out, 1.5);
  EXPECT_EQ(out.download(), std::vector<float>(a.size(), 1.5f));
}

TEST_P(CudaBackendOps, GeluForwardAndBackwardMatchTheCpuOp) {
  const DType dtype = GetParam();
  const Shape shape{7, 37};
  const auto n = static_cast<std::size_t>(shape.numel());
  const std::vector<float> x = as_stored(random_values(n, 4), dtype), dy = as_stored(random_values(n, 5), dtype);
  const DeviceTensor dx_(x, dtype, shape), ddy(dy, dtype, shape), y(dtype, shape), dx(dtype, shape);
  ops::gelu_forward(y, dx_);
  ops::gelu_backward(dx, ddy, dx_);
  const OwnedTensor hx = host_f64(x, shape), hdy = host_f64(dy, shape), hy(DType::F64, shape), hdx(DType::F64, shape);
  ops::gelu_forward(hy, hx);
  ops::gelu_backward(hdx, hdy, hx);
  EXPECT_TRUE(matches(y.download(), hy, dtype));
  EXPECT_TRUE(matches(dx.download(), hdx, dtype));
}

TEST_P(CudaBackendOps, LayernormForwardAndBackwardMatchTheCpuOp) {
  const DType dtype = GetParam();
  const std::int64_t rows = 9, C = 100;
  const Shape shape{3, 3, C};
  const auto n = static_cast<std::size_t>(rows * C);
  const std::vector<float> x = as_stored(random_values(n, 6), dtype), dy = as_stored(random_values(n, 7), dtype);
  const std::vector<float> w = as_stored(random_values(C, 8, 0.5f, 1.5f), dtype), b = as_stored(random_values(C, 9), dtype);
  const DeviceTensor gx(x, dtype, shape), gdy(dy, dtype, shape), gw(w, dtype, {C}), gb(b, dtype, {C});
  const DeviceTensor y(dtype, shape), mean(DType::F32, {rows}), rstd(DType::F32, {rows}), dx(dtype, shape);
  const DeviceTensor dw(DType::F32, {C}), db(DType::F32, {C});
  ops::layernorm_forward(y, mean, rstd, gx, gw, gb);
  ops::layernorm_backward(dx, dw, db, gdy, gx, gw, mean, rstd);

  const OwnedTensor hx = host_f64(x, shape), hdy = host_f64(dy, shape), hw = host_f64(w, {C}), hb = host_f64(b, {C});
  const OwnedTensor hy(DType::F64, shape), hmean(DType::F64, {rows}), hrstd(DType::F64, {rows}), hdx(DType::F64, shape);
  const OwnedTensor hdw(DType::F64, {C}), hdb(DType::F64, {C});
  ops::layernorm_forward(hy, hmean, hrstd, hx, hw, hb);
  ops::layernorm_backward(hdx, hdw, hdb, hdy, hx, hw, hmean, hrstd);
  EXPECT_TRUE(matches(y.download(), hy, dtype, 1e-5));
  EXPECT_TRUE(matches(rstd.download(), hrstd, DType::F32));
  EXPECT_TRUE(matches(dx.download(), hdx, dtype, 1e-5));
  // Weight gradients sum `rows` terms in fp32: scale the tolerance by their count.
  EXPECT_TRUE(all_close(dw.download(), values_of(hdw), kF32Relative * rows, 1e-5));
  EXPECT_TRUE(all_close(db.download(), values_of(hdb), kF32Relative * rows, 1e-5));
}

TEST_P(CudaBackendOps, RmsnormForwardAndBackwardMatchTheCpuOp) {
  const DType dtype = GetParam();
  const std::int64_t rows = 5, C = 64;
  const Shape shape{rows, C};
  const auto n = static_cast<std::size_t>(rows * C);
  const std::vector<float> x = as_stored(random_values(n, 10), dtype), dy = as_stored(random_values(n, 11), dtype);
  const std::vector<float> w = as_stored(random_values(C, 12, 0.5f, 1.5f), dtype);
  const DeviceTensor gx(x, dtype, shape), gdy(dy, dtype, shape), gw(w, dtype, {C});
  const DeviceTensor y(dtype, shape), rstd(DType::F32, {rows}), dx(dtype, shape), dw(DType::F32, {C});
  ops::rmsnorm_forward(y, rstd, gx, gw);
  ops::rmsnorm_backward(dx, dw, gdy, gx, gw, rstd);
  const OwnedTensor hx = host_f64(x, shape), hdy = host_f64(dy, shape), hw = host_f64(w, {C});
  const OwnedTensor hy(DType::F64, shape), hrstd(DType::F64, {rows}), hdx(DType::F64, shape), hdw(DType::F64, {C});
  ops::rmsnorm_forward(hy, hrstd, hx, hw);
  ops::rmsnorm_backward(hdx, hdw, hdy, hx, hw, hrstd);
  EXPECT_TRUE(matches(y.download(), hy, dtype, 1e-5));
  EXPECT_TRUE(matches(dx.download(), hdx, dtype, 1e-5));
  EXPECT_TRUE(all_close(dw.download(), values_of(hdw), kF32Relative * rows, 1e-5));
}

TEST_P(CudaBackendOps, SwigluOnTheFusedGateUpBufferMatchesTheCpuOp) {
  const DType dtype = GetParam();
  const std::int64_t rows = 6, F = 37;
  const auto n = static_cast<std::size_t>(rows * F);
  const std::vector<float> gu = as_stored(random_values(2 * n, 19), dtype), dout = as_stored(random_values(n, 20), dtype);
  const DeviceTensor ggu(gu, dtype, {rows, 2 * F}), gdout(dout, dtype, {rows, F}), out(dtype, {rows, F});
  const DeviceTensor dgu(dtype, {rows, 2 * F});
  const Tensor gate = ggu.tensor.narrow(1, 0, F), up = ggu.tensor.narrow(1, F, F);
  ops::swiglu_forward(out, gate, up);
  ops::swiglu_backward(dgu.tensor.narrow(1, 0, F), dgu.tensor.narrow(1, F, F), gdout, gate, up);
  const OwnedTensor hgu = host_f64(gu, {rows, 2 * F}), hdout = host_f64(dout, {rows, F});
  const OwnedTensor hout(DType::F64, {rows, F}), hdgu(DType::F64, {rows, 2 * F});
  const Tensor hgate = hgu.tensor().narrow(1, 0, F), hup = hgu.tensor().narrow(1, F, F);
  ops::swiglu_forward(hout, hgate, hup);
  ops::swiglu_backward(hdgu.tensor().narrow(1, 0, F), hdgu.tensor().narrow(1, F, F), hdout, hgate, hup);
  EXPECT_TRUE(matches(out.download(), hout, dtype, 1e-5));
  EXPECT_TRUE(matches(dgu.download(), hdgu, dtype, 1e-5));
  // Gate and up from two separate buffers are not what the kernel reads: refused, not misread.
  const DeviceTensor other(dtype, {rows, F});
  const std::string message = error_of([&] { ops::swiglu_forward(out, gate, other); });
  EXPECT_NE(message.find("two halves of one"), std::string::npos) << message;
}

// The backend keeps the frequency tables it uploaded (one per distinct content): alternating
// between two configurations, each call must use its own table.
TEST_P(CudaBackendOps, RopeWithAlternatingConfigurationsUsesEachItsOwnTable) {
  const DType dtype = GetParam();
  const std::int64_t B = 1, T = 6, H = 2, D = 8;
  const auto n = static_cast<std::size_t>(B * T * H * D);
  OwnedTensor positions(DType::I32, {B * T}), hpos(DType::I64, {B * T});
  for (std::int64_t i = 0; i < B * T; ++i) positions.data<std::int32_t>()[i] = static_cast<std::int32_t>(i);
  for (std::int64_t i = 0; i < B * T; ++i) hpos.data<std::int64_t>()[i] = i;
  const DeviceTensor gpos(DType::I32, {B * T});
  ops::copy(gpos, positions);
  ops::RopeConfig plain, scaled;
  scaled.theta = 500000.0;
  scaled.llama3_scaling = true;
  for (int round = 0; round < 4; ++round) {
    const ops::RopeConfig& config = round % 2 == 0 ? plain : scaled;
    const std::vector<float> x = as_stored(random_values(n, 30 + static_cast<std::uint32_t>(round)), dtype);
    const DeviceTensor g(x, dtype, {B, T, H, D});
    ops::rope_forward(g, g, gpos, config);
    const OwnedTensor h = host_f64(x, {B, T, H, D});
    ops::rope_forward(h, h, hpos, config);
    EXPECT_TRUE(matches(g.download(), h, dtype, 1e-5)) << "round " << round;
  }
}

TEST_P(CudaBackendOps, RopeOnQkvSlicesMatchesTheCpuOp) {
  const DType dtype = GetParam();
  const std::int64_t B = 2, T = 5, H = 3, D = 8, row = 5 * D;  // 3 rotated heads of a 5-head row
  const auto n = static_cast<std::size_t>(B * T * row);
  const std::vector<float> qkv = as_stored(random_values(n, 21), dtype);
  const DeviceTensor g(qkv, dtype, {B, T, 5, D});
  OwnedTensor positions(DType::I32, {B * T});
  for (std::int64_t i = 0; i < B * T; ++i) positions.data<std::int32_t>()[i] = static_cast<std::int32_t>(i % 4);  // restarts
  const DeviceTensor gpos(DType::I32, {B * T});
  ops::copy(gpos, positions);
  ops::RopeConfig config;
  config.theta = 500000.0;
  config.llama3_scaling = true;
  const Tensor heads = g.tensor.narrow(2, 0, H);
  ops::rope_forward(heads, heads, gpos, config);
  const OwnedTensor h = host_f64(qkv, {B, T, 5, D});
  OwnedTensor hpos(DType::I64, {B * T});
  for (std::int64_t i = 0; i < B * T; ++i) hpos.data<std::int64_t>()[i] = i % 4;
  const Tensor hheads = h.tensor().narrow(2, 0, H);
  ops::rope_forward(hheads, hheads, hpos, config);
  EXPECT_TRUE(matches(g.download(), h, dtype, 1e-5));
  // The backward undoes the rotation. In bf16 each of the two passes rounds an element once,
  // by 2^-8 of its value, and a rotated element mixes both of its pair (|x| <= 3 here), so the
  // round trip is exact to 2 * 2^-8 * 3 absolute.
  ops::rope_backward(heads, heads, gpos, config);
  EXPECT_TRUE(all_close(g.download(), to_f64(qkv), 1e-5, dtype == DType::BF16 ? 2.0 * 3.0 / 256.0 : 1e-5));
}

TEST_P(CudaBackendOps, CrossEntropyWithPaddingAndMaskMatchesTheCpuOp) {
  const DType dtype = GetParam();
  const std::int64_t rows = 7, V = 40, valid = 37;  // three padding columns
  const std::vector<float> logits = as_stored(random_values(static_cast<std::size_t>(rows * V), 22), dtype);
  std::vector<std::int32_t> targets(rows);
  std::vector<std::uint8_t> keep(rows);
  for (std::int64_t r = 0; r < rows; ++r) {
    targets[r] = static_cast<std::int32_t>((r * 11) % valid);
    keep[r] = r % 3 != 1;
  }
  OwnedTensor host_targets(DType::I32, {rows}), host_mask(DType::U8, {rows});
  std::copy(targets.begin(), targets.end(), host_targets.data<std::int32_t>());
  std::copy(keep.begin(), keep.end(), host_mask.data<std::uint8_t>());
  const DeviceTensor glogits(logits, dtype, {rows, V}), gtargets(DType::I32, {rows}), gmask(DType::U8, {rows});
  ops::copy(gtargets, host_targets);
  ops::copy(gmask, host_mask);
  const DeviceTensor lse(DType::F32, {rows}), losses(DType::F32, {rows}), loss_sum(DType::F64, {2});
  const DeviceTensor dlogits(dtype, {rows, V});
  ops::cross_entropy_forward(losses, lse, loss_sum, glogits, gtargets, gmask, valid);
  ops::cross_entropy_backward(dlogits, glogits, gtargets, lse, gmask, valid, 0.25);

  const OwnedTensor hlogits = host_f64(logits, {rows, V}), hlse(DType::F64, {rows}), hlosses(DType::F64, {rows});
  const OwnedTensor hsum(DType::F64, {2}), hdlogits(DType::F64, {rows, V});
  ops::cross_entropy_forward(hlosses, hlse, hsum, hlogits, host_targets, host_mask, valid);
  ops::cross_entropy_backward(hdlogits, hlogits, host_targets, hlse, host_mask, valid, 0.25);
  EXPECT_TRUE(matches(lse.download(), hlse, DType::F32, 1e-6));
  EXPECT_TRUE(matches(losses.download(), hlosses, DType::F32, 1e-6));
  EXPECT_TRUE(matches(dlogits.download(), hdlogits, dtype, 1e-7));
  const ops::LossSum got = ops::read_loss_sum(loss_sum), want = ops::read_loss_sum(hsum);
  EXPECT_EQ(got.count, want.count);
  EXPECT_NEAR(got.sum, want.sum, 1e-5 * std::abs(want.sum));
}

TEST_P(CudaBackendOps, EmbeddingForwardAccumulateAndBackwardMatchTheCpuOp) {
  const DType dtype = GetParam();
  const std::int64_t V = 11, C = 20, rows = 9;
  const std::vector<float> table = as_stored(random_values(static_cast<std::size_t>(V * C), 27), dtype);
  const std::vector<float> dout = as_stored(random_values(static_cast<std::size_t>(rows * C), 28), dtype);
  OwnedTensor ids(DType::I32, {rows});
  for (std::int64_t r = 0; r < rows; ++r) ids.data<std::int32_t>()[r] = static_cast<std::int32_t>((r * 4) % V);  // repeats
  const DeviceTensor gtable(table, dtype, {V, C}), gdout(dout, dtype, {rows, C}), gids(DType::I32, {rows});
  ops::copy(gids, ids);
  const DeviceTensor out(dtype, {rows, C}), dtable(DType::F32, {V, C});
  ops::embedding_forward(out, gids, gtable);
  ops::embedding_forward(out, gids, gtable, ops::Accumulate::Yes);  // twice the rows
  ops::embedding_backward(dtable, gdout, gids);
  const OwnedTensor htable = host_f64(table, {V, C}), hdout = host_f64(dout, {rows, C});
  const OwnedTensor hout(DType::F64, {rows, C}), hdtable(DType::F64, {V, C});
  ops::embedding_forward(hout, ids, htable);
  ops::embedding_forward(hout, ids, htable, ops::Accumulate::Yes);
  ops::embedding_backward(hdtable, hdout, ids);
  EXPECT_TRUE(matches(out.download(), hout, dtype, 0.0));
  EXPECT_TRUE(matches(dtable.download(), hdtable, DType::F32, 1e-6));
}

// The GEMMs accumulate in f32 over K products of inputs in [-3, 3]: a cancelling sum may end
// near zero, so besides the relative bound an absolute one of K f32 ulp of the largest product.
double gemm_absolute(std::int64_t k) { return static_cast<double>(k) * 9.0 * std::ldexp(1.0, -22); }

TEST_P(CudaBackendOps, LinearForwardAndBackwardMatchTheCpuOp) {
  const DType dtype = GetParam();
  const std::int64_t in = 37, out = 19;
  const Shape x_shape{2, 3, in}, y_shape{2, 3, out};
  const std::vector<float> x = as_stored(random_values(6 * in, 30), dtype), w = as_stored(random_values(out * in, 31), dtype);
  const std::vector<float> b = as_stored(random_values(out, 32), dtype), dy = as_stored(random_values(6 * out, 33), dtype);
  // dx accumulates onto what is there; dw and db (f32 gradients) always add.
  const std::vector<float> dx0 = as_stored(random_values(6 * in, 34), dtype);
  const std::vector<float> dw0 = random_values(out * in, 35), db0 = random_values(out, 36);
  const DeviceTensor gx(x, dtype, x_shape), gw(w, dtype, {out, in}), gb(b, dtype, {out}), gdy(dy, dtype, y_shape);
  const DeviceTensor gy(dtype, y_shape), gdx(dx0, dtype, x_shape), gdw(dw0, DType::F32, {out, in}),
      gdb(db0, DType::F32, {out});
  ops::linear_forward(gy, gx, gw, gb);
  ops::linear_backward(gdx, gdw, gdb, gdy, gx, gw, ops::Accumulate::Yes);

  const OwnedTensor hx = host_f64(x, x_shape), hw = host_f64(w, {out, in}), hb = host_f64(b, {out});
  const OwnedTensor hdy = host_f64(dy, y_shape), hy(DType::F64, y_shape), hdx = host_f64(dx0, x_shape);
  const OwnedTensor hdw = host_f64(dw0, {out, in}), hdb = host_f64(db0, {out});
  ops::linear_forward(hy, hx, hw, hb);
  ops::linear_backward(hdx, hdw, hdb, hdy, hx, hw, ops::Accumulate::Yes);
  EXPECT_TRUE(matches(gy.download(), hy, dtype, gemm_absolute(in)));
  EXPECT_TRUE(matches(gdx.download(), hdx, dtype, gemm_absolute(out)));
  EXPECT_TRUE(matches(gdw.download(), hdw, DType::F32, gemm_absolute(6)));
  EXPECT_TRUE(matches(gdb.download(), hdb, DType::F32, gemm_absolute(6)));

  // Without accumulation dx is overwritten, and a layer without bias or weight gradient works.
  ops::linear_backward(gdx, Tensor{}, Tensor{}, gdy, gx, gw);
  const OwnedTensor hdx_fresh(DType::F64, x_shape);
  ops::linear_backward(hdx_fresh, Tensor{}, Tensor{}, hdy, hx, hw);
  EXPECT_TRUE(matches(gdx.download(), hdx_fresh, dtype, gemm_absolute(out)));
}

TEST_P(CudaBackendOps, MatmulWithEveryTransposeAlphaAndBetaMatchesTheCpuOp) {
  const DType dtype = GetParam();
  const std::int64_t m = 5, n = 13, k = 21;
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      const Shape a_shape = ta ? Shape{k, m} : Shape{m, k}, b_shape = tb ? Shape{n, k} : Shape{k, n};
      const std::vector<float> a = as_stored(random_values(m * k, 40), dtype), b = as_stored(random_values(k * n, 41), dtype);
      const std::vector<float> c0 = as_stored(random_values(m * n, 42), dtype);
      const DeviceTensor ga(a, dtype, a_shape), gb(b, dtype, b_shape), gc(c0, dtype, {m, n});
      ops::matmul(gc, ga, gb, ta, tb, 0.5, 2.0);
      const OwnedTensor hc = host_f64(c0, {m, n});
      ops::matmul(hc, host_f64(a, a_shape), host_f64(b, b_shape), ta, tb, 0.5, 2.0);
      EXPECT_TRUE(matches(gc.download(), hc, dtype, gemm_absolute(k))) << "ta=" << ta << " tb=" << tb;
    }
  }
}

TEST_P(CudaBackendOps, LinearRefusesAShapeOrDtypeTheGemmCannotTake) {
  const DType dtype = GetParam();
  const DeviceTensor x(random_values(12, 43), dtype, {3, 4}), w(random_values(20, 44), dtype, {5, 4});
  const DeviceTensor y(dtype, {3, 5}), wrong_y(dtype, {3, 6});
  std::string message = error_of([&] { ops::linear_forward(wrong_y, x, w); });
  EXPECT_NE(message.find("ops::linear_forward"), std::string::npos) << message;
  EXPECT_NE(message.find("`y`"), std::string::npos) << message;
  const DType other = dtype == DType::F32 ? DType::BF16 : DType::F32;
  const DeviceTensor b(random_values(5, 45), other, {5});
  message = error_of([&] { ops::linear_forward(y, x, w, b); });
  EXPECT_NE(message.find("`b`"), std::string::npos) << message;
}

INSTANTIATE_TEST_SUITE_P(Storage, CudaBackendOps, ::testing::Values(DType::F32, DType::BF16),
                         [](const ::testing::TestParamInfo<DType>& param) { return std::string(dtype_name(param.param)); });

TEST(CudaBackend, LossSumsAddUpInF64OnTheDevice) {
  select_the_test_device();
  const double a[2] = {1099511627776.0, 3.0}, b[2] = {0.5, 4.0};  // 2^40 + 0.5: exact in f64, not in f32
  const DeviceTensor total(DType::F64, {2}), part(DType::F64, {2});
  ops::copy(total, Tensor::of(a, {2}));
  ops::copy(part, Tensor::of(b, {2}));
  ops::add_to(total, part);
  const ops::LossSum sum = ops::read_loss_sum(total);
  EXPECT_EQ(sum.sum, 1099511627776.5);
  EXPECT_EQ(sum.count, 7);
  const DeviceTensor f32(DType::F32, {2});
  EXPECT_NE(error_of([&] { ops::add_to(total, f32); }).find("share one dtype"), std::string::npos);
}

TEST(CudaBackend, SumOfSquaresOverRangesIsOneDeviceResult) {
  select_the_test_device();
  const std::vector<float> x = random_values(2000, 13);
  const DeviceTensor gx(x, DType::F32, {2000}), total(DType::F64, {1});
  const std::vector<ops::FlatRange> ranges = {{0, 100}, {500, 1499}, {1999, 1}};
  ops::sum_of_squares(total, gx, ranges);
  OwnedTensor host_total(DType::F64, {1});
  ops::copy(host_total, total);
  double want = 0, scale = 0;
  for (const auto& range : ranges)
    for (std::int64_t i = range.offset; i < range.offset + range.length; ++i) want += double(x[i]) * x[i];
  scale = want;
  EXPECT_NEAR(*host_total.data<double>(), want, 1e-12 * scale);
}

TEST(CudaBackend, MultiTensorAdamWMatchesTheCpuOpAndRefreshesTheBf16Copy) {
  select_the_test_device();
  const std::int64_t P = 300, S = 280;
  const std::vector<float> params = random_values(P, 23), grads = random_values(S, 24);
  const std::vector<float> m = random_values(S, 25, -0.1f, 0.1f), v = random_values(S, 26, 0.0f, 0.2f);
  const std::vector<ops::AdamWSegment> segments = {{0, 0, 100, true}, {120, 100, 150, false}, {290, 250, 10, true}};
  ops::AdamWStep step;
  step.lr = 3e-3;
  step.weight_decay = 0.1;
  step.step = 7;
  step.grad_scale = 0.5;
  const DeviceTensor gp(params, DType::F32, {P}), gg(grads, DType::F32, {S}), gm(m, DType::F32, {S}),
      gv(v, DType::F32, {S}), gcopy(DType::BF16, {P});
  ops::adamw_step_segments(gp, gg, gm, gv, segments, step, gcopy);
  OwnedTensor hp(DType::F32, {P}), hg(DType::F32, {S}), hm(DType::F32, {S}), hv(DType::F32, {S}), hcopy(DType::BF16, {P});
  std::copy(params.begin(), params.end(), hp.data<float>());
  std::copy(grads.begin(), grads.end(), hg.data<float>());
  std::copy(m.begin(), m.end(), hm.data<float>());
  std::copy(v.begin(), v.end(), hv.data<float>());
  ops::adamw_step_segments(hp, hg, hm, hv, segments, step, hcopy);
  const auto host_values = [](const OwnedTensor& t) {
    OwnedTensor f(DType::F32, t.shape());
    ops::copy(f, t);
    return std::vector<double>(f.data<float>(), f.data<float>() + f.numel());
  };
  // The kernel does the CPU op's f32 arithmetic; only the order of the fused operations may
  // differ, so a few f32 ulp.
  EXPECT_TRUE(all_close(gp.download(), host_values(hp), kF32Relative, 1e-7));
  EXPECT_TRUE(all_close(gm.download(), host_values(hm), kF32Relative, 1e-9));
  EXPECT_TRUE(all_close(gv.download(), host_values(hv), kF32Relative, 1e-9));
  // The working copy holds the rounded new masters inside the segments, zero outside them.
  EXPECT_TRUE(all_close(gcopy.download(), host_values(hcopy), kBF16Relative, 1e-7));
}

TEST(CudaBackend, MixingDevicesInOneOpIsAnErrorNamingBoth) {
  select_the_test_device();
  const DeviceTensor a(random_values(8, 14), DType::F32, {8});
  const OwnedTensor b(DType::F32, {8});
  const std::string message = error_of([&] { ops::add(a, a, b); });
  EXPECT_NE(message.find("ops::add"), std::string::npos) << message;
  EXPECT_NE(message.find("one device"), std::string::npos) << message;
}

TEST(CudaBackend, OpsWithoutACudaKernelYetRefuseDeviceTensors) {
  select_the_test_device();
  const DeviceTensor x(random_values(8, 15), DType::F32, {2, 4}), y(DType::F32, {2, 4});
  const std::string message = error_of([&] { ops::softmax_forward(y, x, 4); });
  EXPECT_NE(message.find("no CUDA implementation yet"), std::string::npos) << message;
}

TEST(CudaBackend, MixedStorageDtypesAreRefused) {
  select_the_test_device();
  const DeviceTensor x(random_values(8, 16), DType::BF16, {2, 4}), w(random_values(4, 17), DType::F32, {4});
  const DeviceTensor y(DType::BF16, {2, 4});
  const std::string message = error_of([&] { ops::rmsnorm_forward(y, Tensor{}, x, w); });
  EXPECT_NE(message.find("share one dtype"), std::string::npos) << message;
}

#if KILN_CUDA_EMULATED
TEST(CudaBackend, OutOfMemorySaysWhatWasAskedWhatIsFreeAndWhichKeysLowerIt) {
  select_the_test_device();
  const std::size_t previous = kiln::emu::set_device_capacity(std::size_t{64} << 20);
  const std::string message = error_of([] {
    memory::DeviceBuffer huge(std::size_t{100} << 20, memory::MemoryCategory::activations, cuda_backend::cuda_allocator());
  });
  kiln::emu::set_device_capacity(previous);
  EXPECT_NE(message.find("out of GPU memory"), std::string::npos) << message;
  EXPECT_NE(message.find("100.0 MiB asked"), std::string::npos) << message;
  EXPECT_NE(message.find("of 64.0 MiB free"), std::string::npos) << message;
  EXPECT_NE(message.find("train.micro_batch_size"), std::string::npos) << message;
}

TEST(CudaBackend, DeviceMemoryIsCountedInTheLedgerAndReallyOnTheDevice) {
  select_the_test_device();
  const std::size_t live = kiln::emu::live_device_allocations();
  {
    const DeviceTensor x(random_values(300, 18), DType::F32, {300});
    EXPECT_TRUE(kiln::emu::is_device_pointer(x.tensor.ptr));
    EXPECT_EQ(kiln::emu::live_device_allocations(), live + 1);
  }
  EXPECT_EQ(kiln::emu::live_device_allocations(), live);
}
#endif

}  // namespace
}  // namespace kiln::cuda_test
