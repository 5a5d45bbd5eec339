// ops::flash_attention_forward/backward on CUDA tensors (kernels/cuda/attention.cu) against the
// CPU op in f64 on the same inputs: causal and not, GQA, packed documents (with an id that
// comes back after another document: runs, not equal ids, bound attention), queries that are
// the last Tq of Tk keys, q/k/v as strided views of one fused qkv buffer, head dims that are
// not a multiple of 32, sequences longer than one key tile. Emulated device here; the GPU in
// kiln_cuda_tests.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/flash_attention.hpp"
#include "kernels/ops.hpp"
#include "tests/core/error_testing.hpp"
#include "tests/cuda/device_tensor.hpp"
#include "tests/cuda/kernel_reference.hpp"
#include "tests/cuda/test_device.hpp"

namespace kiln::cuda_test {
namespace {

using kiln::testing::error_of;
namespace device = kiln::KILN_CUDA_NS;

struct AttentionCase {
  std::int64_t batch, tq, tk, heads, kv_heads, dim;
  bool causal, documents;
};

std::string name_of(const AttentionCase& c) {
  return fmt::format("B{} Tq{} Tk{} H{}/{} D{}{}{}", c.batch, c.tq, c.tk, c.heads, c.kv_heads, c.dim,
                     c.causal ? " causal" : "", c.documents ? " documents" : "");
}

// Document ids of a packed row: runs of 5, 1, 19, ... tokens; the first id returns after the
// second run, so only runs of equal consecutive ids may bound attention.
std::vector<std::int32_t> document_ids(std::int64_t batch, std::int64_t tk) {
  const std::int64_t lengths[] = {5, 1, 19, 3, 40, 2};
  const std::int32_t ids[] = {0, 1, 0, 2, 3, 4};
  std::vector<std::int32_t> out;
  for (std::int64_t b = 0; b < batch; ++b) {
    std::int64_t run = b, left = lengths[run % 6] + b;  // rows differ
    for (std::int64_t t = 0; t < tk; ++t) {
      if (left == 0) left = lengths[++run % 6];
      out.push_back(ids[run % 6] + static_cast<std::int32_t>(10 * (run / 6)));
      --left;
    }
  }
  return out;
}

// f32 accumulation over the Tk keys and D dims of values of magnitude <= 1 (scores scaled by
// 1/sqrt(D), gradients up to ~sqrt(D)): a cancelling sum ends near zero, so an absolute bound
// of (Tk + D) f32 ulp at that magnitude next to the relative one.
double absolute_bound(const AttentionCase& c) {
  return static_cast<double>(c.tk + c.dim) * (1.0 + std::sqrt(static_cast<double>(c.dim))) * std::ldexp(1.0, -23);
}

// The tensor-core kernels (bf16, head dims 64 and 128) round the probabilities and their
// gradients to bf16 as FlashAttention-2 does: compared by close_to_bf16_accuracy.
bool uses_tensor_cores(const AttentionCase& c, DType dtype) { return dtype == DType::BF16 && (c.dim == 64 || c.dim == 128); }

void check_case(const AttentionCase& c, DType dtype) {
  SCOPED_TRACE(name_of(c) + " " + std::string(dtype_name(dtype)));
  const std::int64_t width = c.heads + 2 * c.kv_heads;
  const Shape qkv_shape{c.batch, c.tk, width, c.dim}, q_shape{c.batch, c.tq, c.heads, c.dim};
  const Shape kv_shape{c.batch, c.tk, c.kv_heads, c.dim}, lse_shape{c.batch, c.heads, c.tq};
  const auto count = [](const Shape& s) { return static_cast<std::size_t>(s.numel()); };
  const std::vector<float> qkv = as_stored(random_values(count(qkv_shape), 50, -1.0f, 1.0f), dtype);
  const std::vector<float> q = as_stored(random_values(count(q_shape), 51, -1.0f, 1.0f), dtype);
  const std::vector<float> dout = as_stored(random_values(count(q_shape), 52, -1.0f, 1.0f), dtype);
  // Queries from their own buffer when Tq < Tk (a KV cache), else from the fused buffer.
  const bool fused = c.tq == c.tk;
  const DeviceTensor gqkv(qkv, dtype, qkv_shape), gq_own(q, dtype, q_shape), gdout(dout, dtype, q_shape);
  const Tensor gq = fused ? heads_view(gqkv, 0, c.heads) : gq_own.tensor;
  const Tensor gk = heads_view(gqkv, c.heads, c.kv_heads), gv = heads_view(gqkv, c.heads + c.kv_heads, c.kv_heads);
  const OwnedTensor hqkv = host_f64(qkv, qkv_shape), hq_own = host_f64(q, q_shape), hdout = host_f64(dout, q_shape);
  const Tensor hq = fused ? heads_view(hqkv.tensor(), 0, c.heads) : hq_own.tensor();
  const Tensor hk = heads_view(hqkv.tensor(), c.heads, c.kv_heads);
  const Tensor hv = heads_view(hqkv.tensor(), c.heads + c.kv_heads, c.kv_heads);

  OwnedTensor host_docs(DType::I32, {c.batch, c.tk});
  const DeviceTensor gdocs(DType::I32, {c.batch, c.tk});
  if (c.documents) {
    const std::vector<std::int32_t> ids = document_ids(c.batch, c.tk);
    std::copy(ids.begin(), ids.end(), host_docs.data<std::int32_t>());
    ops::copy(gdocs, host_docs);
  }
  const Tensor gdoc_ids = c.documents ? gdocs.tensor : Tensor{};
  const Tensor hdoc_ids = c.documents ? host_docs.tensor() : Tensor{};
  const ops::AttentionOptions options{.causal = c.causal, .softmax_scale = 0.0};

  const DeviceTensor gout(dtype, q_shape), glse(DType::F32, lse_shape);
  ops::flash_attention_forward(gout, glse, gq, gk, gv, gdoc_ids, options);
  const OwnedTensor hout(DType::F64, q_shape), hlse(DType::F64, lse_shape);
  ops::flash_attention_forward(hout, hlse, hq, hk, hv, hdoc_ids, options);
  const double absolute = absolute_bound(c);
  const double relative = dtype == DType::BF16 ? kBF16Relative : kF32Relative;
  const auto close = [&](const DeviceTensor& got, const OwnedTensor& want) {
    return uses_tensor_cores(c, dtype) ? close_to_bf16_accuracy(got.download(), values_of(want))
                                                 : all_close(got.download(), values_of(want), relative, absolute);
  };
  EXPECT_TRUE(close(gout, hout)) << "out";
  EXPECT_TRUE(all_close(glse.download(), values_of(hlse), kF32Relative, absolute)) << "lse";

  // The backward from the device's own forward results, on both sides.
  const std::vector<float> out_stored = gout.download(), lse_stored = glse.download();
  const DeviceTensor gdq(dtype, q_shape), gdk(dtype, kv_shape), gdv(dtype, kv_shape);
  ops::flash_attention_backward(gdq, gdk, gdv, gdout, gq, gk, gv, gout, glse, gdoc_ids, options);
  const OwnedTensor hdq(DType::F64, q_shape), hdk(DType::F64, kv_shape), hdv(DType::F64, kv_shape);
  ops::flash_attention_backward(hdq, hdk, hdv, hdout, hq, hk, hv, host_f64(out_stored, q_shape),
                                host_f64(lse_stored, lse_shape), hdoc_ids, options);
  EXPECT_TRUE(close(gdq, hdq)) << "dq";
  EXPECT_TRUE(close(gdk, hdk)) << "dk";
  EXPECT_TRUE(close(gdv, hdv)) << "dv";
}

class CudaAttention : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override { select_the_test_device(); }
};

TEST_P(CudaAttention, CausalAndFullWithGqaAndDocumentsMatchTheCpuOp) {
  for (const bool causal : {true, false})
    for (const bool documents : {false, true}) {
      check_case({2, 7, 7, 4, 2, 16, causal, documents}, GetParam());
      check_case({1, 70, 70, 4, 1, 37, causal, documents}, GetParam());
    }
}

TEST_P(CudaAttention, OneTokenAndOneHeadMatchTheCpuOp) {
  check_case({1, 1, 1, 1, 1, 8, true, false}, GetParam());
  check_case({3, 1, 1, 2, 2, 33, false, true}, GetParam());
}

TEST_P(CudaAttention, HeadDimsOf64And128OverSeveralKeyTilesMatchTheCpuOp) {
  check_case({1, 65, 65, 2, 1, 64, true, true}, GetParam());
  check_case({1, 40, 40, 2, 2, 128, true, false}, GetParam());
}

// Shapes for the tensor-core kernels in bf16 (the f32 run takes the CUDA-core kernels): several
// 64-row tiles with a partial last one, GQA, documents, full attention, a KV cache's last queries.
TEST_P(CudaAttention, TensorCoreTilesWithGqaDocumentsAndAKvCacheMatchTheCpuOp) {
  check_case({2, 130, 130, 4, 2, 64, true, true}, GetParam());
  check_case({1, 97, 97, 2, 2, 64, false, false}, GetParam());
  check_case({1, 80, 80, 4, 1, 64, false, true}, GetParam());
  check_case({1, 5, 140, 2, 1, 64, true, true}, GetParam());
  check_case({1, 70, 70, 2, 1, 128, true, true}, GetParam());
}

TEST_P(CudaAttention, TensorCoreBlocksOfEightWarpsMatchTheCpuOp) {
  device::set_flash_attention_block_warps(8);
  check_case({2, 130, 130, 4, 2, 64, true, true}, GetParam());
  check_case({1, 200, 200, 2, 1, 64, false, false}, GetParam());
  check_case({1, 5, 140, 2, 1, 64, true, true}, GetParam());
  check_case({1, 70, 70, 2, 1, 128, true, false}, GetParam());
  device::set_flash_attention_block_warps(4);
  EXPECT_THROW(device::set_flash_attention_block_warps(6), kiln::Error);
  EXPECT_EQ(device::flash_attention_block_warps(), 4);
}

// The wgmma kernels (sm_90a), forward and backward, over the same shapes, one and two
// warpgroups per block. The f32 run takes the CUDA-core kernels either way.
TEST_P(CudaAttention, WarpgroupMmaKernelsMatchTheCpuOp) {
  if (!device::flash_attention_wgmma_built()) GTEST_SKIP() << "kiln was not built for sm_90a";
  for (const int warps : {4, 8}) {
    SCOPED_TRACE(warps);
    const FlashAttentionVariant variant(device::FlashKernels::wgmma, warps);
    check_case({2, 130, 130, 4, 2, 64, true, true}, GetParam());
    check_case({1, 97, 97, 2, 2, 64, false, false}, GetParam());
    check_case({1, 5, 140, 2, 1, 64, true, true}, GetParam());
    check_case({1, 70, 70, 2, 1, 128, true, true}, GetParam());
    check_case({1, 200, 200, 4, 1, 128, false, true}, GetParam());
    check_case({1, 512, 512, 2, 1, 64, false, false}, GetParam());
  }
}

TEST_P(CudaAttention, QueriesThatAreTheLastOfTheKeysMatchTheCpuOp) {  // decoding with a KV cache
  check_case({2, 1, 45, 4, 2, 16, true, false}, GetParam());
  check_case({1, 5, 40, 2, 1, 24, true, true}, GetParam());
  check_case({1, 5, 40, 2, 1, 24, false, false}, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Storage, CudaAttention, ::testing::Values(DType::F32, DType::BF16),
                         [](const ::testing::TestParamInfo<DType>& param) { return std::string(dtype_name(param.param)); });

TEST(CudaAttentionContract, ABadShapeOrLayoutIsAnErrorNamingTheTensor) {
  select_the_test_device();
  const DeviceTensor q(DType::F32, {1, 4, 2, 8}), k(DType::F32, {1, 4, 2, 8}), v(DType::F32, {1, 4, 2, 8});
  const DeviceTensor out(DType::F32, {1, 4, 2, 8}), lse(DType::F32, {1, 2, 4}), wide(DType::F32, {1, 4, 2, 256});
  const DeviceTensor wide_lse(DType::F32, {1, 2, 4}), lse_bf16(DType::BF16, {1, 2, 4}), docs(DType::I32, {1, 3});
  std::string message = error_of([&] { ops::flash_attention_forward(out, lse, q, k, v, docs); });
  EXPECT_NE(message.find("`doc_ids`"), std::string::npos) << message;
  message = error_of([&] { ops::flash_attention_forward(wide, wide_lse, wide, wide, wide); });
  EXPECT_NE(message.find("head dim must be in [1, 128]"), std::string::npos) << message;
  message = error_of([&] { ops::flash_attention_forward(out, lse_bf16, q, k, v); });
  EXPECT_NE(message.find("`lse`"), std::string::npos) << message;
  const OwnedTensor host_lse(DType::F32, {1, 2, 4});
  message = error_of([&] { ops::flash_attention_forward(out, host_lse, q, k, v); });
  EXPECT_NE(message.find("one device"), std::string::npos) << message;
}

}  // namespace
}  // namespace kiln::cuda_test
