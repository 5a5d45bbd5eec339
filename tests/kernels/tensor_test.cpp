// Tensor views, host buffers, 16-bit conversions, the element-wise ops and ops' error paths.
#include <gtest/gtest.h>

#include <cstring>

#include "tests/kernels/kernel_testing.hpp"

namespace kiln {
namespace {

using testing::to_vector;

TEST(KernelTensor, ContiguousViewsReshapeNarrowAndSelect) {
  std::vector<float> storage(24);
  for (int i = 0; i < 24; ++i) storage[i] = float(i);
  const Tensor t = Tensor::of(storage.data(), {2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.stride(0), 12);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.reshape({6, -1}).shape, (Shape{6, 4}));
  EXPECT_EQ(t.flatten_rows().shape, (Shape{6, 4}));
  EXPECT_THROW(t.reshape({5, -1}), Error);

  const Tensor column = t.narrow(2, 1, 2);  // [2, 3, 2], strided
  EXPECT_FALSE(column.is_contiguous());
  EXPECT_THROW(column.reshape({12}), Error);
  EXPECT_EQ(to_vector(column)[0], 1.0);
  EXPECT_EQ(to_vector(column)[3], 6.0);

  const Tensor second = t.select(1);  // [3, 4]
  EXPECT_EQ(second.shape, (Shape{3, 4}));
  EXPECT_EQ(second.data<float>()[0], 12.0f);
  EXPECT_THROW(t.select(2), Error);
  EXPECT_THROW((void)t.data<double>(), Error);
  EXPECT_NE(t.str().find("f32[2, 3, 4] cpu"), std::string::npos);
}

TEST(KernelTensor, HostBufferIsAlignedZeroedAndBoundsChecked) {
  HostBuffer buffer(1000);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(buffer.data()) % 64, 0u);
  const Tensor a = buffer.view(DType::F32, {10, 10});
  const Tensor b = buffer.view(DType::F64, {50}, 400);
  EXPECT_EQ(static_cast<std::byte*>(b.ptr) - static_cast<std::byte*>(a.ptr), 400);
  EXPECT_EQ(a.data<float>()[99], 0.0f);
  EXPECT_THROW(buffer.view(DType::F64, {126}), Error);
  EXPECT_THROW(buffer.view(DType::F64, {2}, 4), Error);  // misaligned for f64

  OwnedTensor owned(DType::BF16, {3, 5});
  EXPECT_EQ(owned.numel(), 15);
  EXPECT_EQ(owned.tensor().nbytes(), 30u);
  OwnedTensor moved = std::move(owned);
  EXPECT_TRUE(moved.tensor().defined());
  EXPECT_TRUE(OwnedTensor(DType::F32, {0}).tensor().defined());
}

TEST(KernelTensor, SixteenBitConversionsRoundToNearestEven) {
  EXPECT_EQ(to_bfloat16(1.0f).bits, 0x3F80);
  EXPECT_EQ(to_float(BFloat16{0xC040}), -3.0f);
  // 1 + 2^-8 is halfway between two bf16 values: ties go to the even mantissa (1.0).
  EXPECT_EQ(to_bfloat16(1.0f + 0x1.0p-8f).bits, 0x3F80);
  EXPECT_EQ(to_bfloat16(1.0f + 3 * 0x1.0p-8f).bits, 0x3F82);
  EXPECT_TRUE(std::isnan(to_float(to_bfloat16(NAN))));

  EXPECT_EQ(to_float16(1.0f).bits, 0x3C00);
  EXPECT_EQ(to_float16(-2.5f).bits, 0xC100);
  EXPECT_EQ(to_float16(65504.0f).bits, 0x7BFF);
  EXPECT_EQ(to_float16(1e6f).bits, 0x7C00);               // overflow to inf
  EXPECT_EQ(to_float16(0x1.0p-24f).bits, 0x0001);         // smallest subnormal
  EXPECT_EQ(to_float16(1.0f + 0x1.0p-11f).bits, 0x3C00);  // tie to even
  EXPECT_EQ(to_float(Float16{0x0001}), 0x1.0p-24f);
  EXPECT_EQ(to_float(Float16{0x7BFF}), 65504.0f);
  for (std::uint32_t bits = 0; bits < 0x7C00; bits += 7)  // every 7th finite half round-trips
    EXPECT_EQ(to_float16(to_float(Float16{static_cast<std::uint16_t>(bits)})).bits, bits);
}

TEST(KernelElementwise, AddAxpyScaleFillZeroCopy) {
  std::vector<double> a = {1, 2, 3}, b = {10, 20, 30}, out(3);
  ops::add(Tensor::of(out.data(), {3}), Tensor::of(a.data(), {3}), Tensor::of(b.data(), {3}));
  EXPECT_EQ(out, (std::vector<double>{11, 22, 33}));
  ops::add_to(Tensor::of(out.data(), {3}), Tensor::of(a.data(), {3}));
  EXPECT_EQ(out, (std::vector<double>{12, 24, 36}));
  ops::axpy(Tensor::of(out.data(), {3}), -2.0, Tensor::of(a.data(), {3}));
  EXPECT_EQ(out, (std::vector<double>{10, 20, 30}));
  ops::scale(Tensor::of(out.data(), {3}), 0.5);
  EXPECT_EQ(out, (std::vector<double>{5, 10, 15}));
  ops::fill(Tensor::of(out.data(), {3}), 7.0);
  EXPECT_EQ(out, (std::vector<double>{7, 7, 7}));
  ops::zero(Tensor::of(out.data(), {3}));
  EXPECT_EQ(out, (std::vector<double>{0, 0, 0}));

  // Converting, strided copy: f32 column slice -> bf16 -> f64.
  std::vector<float> wide = {1.5f, -2.0f, 3.25f, 4.0f, 5.0f, 6.0f};
  const Tensor column = Tensor::of(wide.data(), {3, 2}).narrow(1, 1, 1);
  OwnedTensor half(DType::BF16, {3, 1}), back(DType::F64, {3, 1});
  ops::copy(half, column);
  ops::copy(back, half);
  EXPECT_EQ(to_vector(back), (std::vector<double>{-2.0, 4.0, 6.0}));
  std::vector<std::int32_t> ints = {1, 2};
  OwnedTensor float_dst(DType::F32, {2});
  EXPECT_THROW(ops::copy(float_dst, Tensor::of(ints.data(), {2})), Error);
  std::vector<std::int32_t> int_dst(2);
  ops::copy(Tensor::of(int_dst.data(), {2}), Tensor::of(ints.data(), {2}));
  EXPECT_EQ(int_dst, ints);
  std::vector<std::int32_t> strided_ints = {1, 2, 3, 4};
  ops::zero(Tensor::of(strided_ints.data(), {2, 2}).narrow(1, 0, 1));
  EXPECT_EQ(strided_ints, (std::vector<std::int32_t>{0, 2, 0, 4}));
}

TEST(OpsDispatch, RejectsCudaTensorsAndMixedDtypesWithClearMessages) {
  std::vector<float> host(8);
  const Tensor on_gpu(host.data(), DType::F32, {8}, Device::Cuda);
  try {
    ops::scale(on_gpu, 2.0);
    FAIL() << "expected kiln::Error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("ops::scale"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("CUDA"), std::string::npos);
  }
  std::vector<double> other(8);
  EXPECT_THROW(ops::add_to(Tensor::of(host.data(), {8}), Tensor::of(other.data(), {8})), Error);
  EXPECT_THROW(ops::add_to(Tensor::of(host.data(), {8}), Tensor::of(host.data(), {4})), Error);
  EXPECT_THROW(ops::add_to(Tensor::of(host.data(), {8}), Tensor{}), Error);
  // bf16 is storage every op takes (bf16_ops_test.cpp); f16 is not.
  std::vector<std::uint16_t> half(8);
  EXPECT_THROW(ops::scale(Tensor(half.data(), DType::F16, {8}), 2.0), Error);
  EXPECT_THROW(ops::scale(Tensor(half.data(), DType::BF16, {8}, Device::Cuda), 2.0), Error);
}

}  // namespace
}  // namespace kiln
