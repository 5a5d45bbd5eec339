// ops::flash_attention_forward/backward with AttentionLibrary::cudnn (cuDNN's fused SDPA over
// kiln's packed documents as ragged sequences, kernels/cuda/cudnn_sdpa.hpp) against the CPU op in
// f64 on the same bf16 inputs: causal and not, GQA, documents and whole rows, q/k/v as strided
// views of one fused qkv buffer, head dims 16, 64 and 128. The saved lse is token-major.
// Emulated device here: the frontend validates every graph for sm_90 and a host implementation
// computes through the same ragged offsets; the real cuDNN in kiln_cuda_tests. Skipped, saying
// why, where cuDNN cannot load.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cuda/cudnn_sdpa.hpp"
#include "kernels/ops.hpp"
#include "tests/core/error_testing.hpp"
#include "tests/cuda/device_tensor.hpp"
#include "tests/cuda/kernel_reference.hpp"
#include "tests/cuda/test_device.hpp"

namespace kiln::cuda_test {
namespace {

using kiln::testing::error_of;

struct CudnnCase {
  std::int64_t batch, seq, heads, kv_heads, dim;
  bool causal, documents;
};

std::string name_of(const CudnnCase& c) {
  return fmt::format("B{} T{} H{}/{} D{}{}{}", c.batch, c.seq, c.heads, c.kv_heads, c.dim, c.causal ? " causal" : "",
                     c.documents ? " documents" : "");
}

// Packed rows of documents 9, 1, 30, 4, ... tokens long, each row cut differently; an id comes
// back after another document, so runs (not ids) are what bound attention.
std::vector<std::int32_t> packed_ids(std::int64_t batch, std::int64_t seq) {
  const std::int64_t lengths[] = {9, 1, 30, 4, 17, 2, 64};
  std::vector<std::int32_t> ids;
  for (std::int64_t b = 0; b < batch; ++b) {
    std::int64_t run = b, left = lengths[run % 7] - b % 3;
    for (std::int64_t t = 0; t < seq; ++t) {
      if (left <= 0) left = lengths[++run % 7];
      ids.push_back(static_cast<std::int32_t>(run % 2));  // 0, 1, 0, 1: ids repeat
      --left;
    }
  }
  return ids;
}

// [B, T, H] token-major lse -> [B, H, T], as the CPU op lays it out.
std::vector<float> head_major(const std::vector<float>& token_major, std::int64_t batch, std::int64_t seq,
                              std::int64_t heads) {
  std::vector<float> out(token_major.size());
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t t = 0; t < seq; ++t)
      for (std::int64_t h = 0; h < heads; ++h)
        out[static_cast<std::size_t>((b * heads + h) * seq + t)] =
            token_major[static_cast<std::size_t>((b * seq + t) * heads + h)];
  return out;
}

class CudnnAttention : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!cudnn_sdpa::available(&why)) GTEST_SKIP() << "cuDNN attention is not available here: " << why;
    select_the_test_device();
  }
};

void check_case(const CudnnCase& c) {
  SCOPED_TRACE(name_of(c));
  const std::int64_t width = c.heads + 2 * c.kv_heads;
  const Shape qkv_shape{c.batch, c.seq, width, c.dim}, q_shape{c.batch, c.seq, c.heads, c.dim};
  const Shape kv_shape{c.batch, c.seq, c.kv_heads, c.dim}, lse_shape{c.batch, c.heads, c.seq};
  const std::vector<float> qkv = as_stored(random_values(static_cast<std::size_t>(qkv_shape.numel()), 60, -1, 1), DType::BF16);
  const std::vector<float> dout = as_stored(random_values(static_cast<std::size_t>(q_shape.numel()), 61, -1, 1), DType::BF16);
  const DeviceTensor gqkv(qkv, DType::BF16, qkv_shape), gdout(dout, DType::BF16, q_shape);
  const Tensor gq = heads_view(gqkv, 0, c.heads), gk = heads_view(gqkv, c.heads, c.kv_heads);
  const Tensor gv = heads_view(gqkv, c.heads + c.kv_heads, c.kv_heads);
  const OwnedTensor hqkv = host_f64(qkv, qkv_shape), hdout = host_f64(dout, q_shape);
  const Tensor hq = heads_view(hqkv.tensor(), 0, c.heads), hk = heads_view(hqkv.tensor(), c.heads, c.kv_heads);
  const Tensor hv = heads_view(hqkv.tensor(), c.heads + c.kv_heads, c.kv_heads);

  OwnedTensor host_docs(DType::I32, {c.batch, c.seq});
  const DeviceTensor gdocs(DType::I32, {c.batch, c.seq});
  std::vector<std::int64_t> ids;
  if (c.documents) {
    const std::vector<std::int32_t> packed = packed_ids(c.batch, c.seq);
    std::copy(packed.begin(), packed.end(), host_docs.data<std::int32_t>());
    ops::copy(gdocs, host_docs);
    ids.assign(packed.begin(), packed.end());
  }
  const Tensor gdoc_ids = c.documents ? gdocs.tensor : Tensor{}, hdoc_ids = c.documents ? host_docs.tensor() : Tensor{};
  const ops::DocumentRuns runs = ops::document_runs(ids, c.batch, c.seq);
  const ops::AttentionOptions cpu{.causal = c.causal, .softmax_scale = 0.0};
  ops::AttentionOptions cudnn = cpu;
  cudnn.library = ops::AttentionLibrary::cudnn;
  cudnn.documents = &runs;

  const DeviceTensor gout(DType::BF16, q_shape), glse(DType::F32, lse_shape);
  ops::flash_attention_forward(gout, glse, gq, gk, gv, gdoc_ids, cudnn);
  const OwnedTensor hout(DType::F64, q_shape), hlse(DType::F64, lse_shape);
  ops::flash_attention_forward(hout, hlse, hq, hk, hv, hdoc_ids, cpu);
  EXPECT_TRUE(close_to_bf16_accuracy(gout.download(), values_of(hout))) << "out";
  const std::vector<float> lse = head_major(glse.download(), c.batch, c.seq, c.heads);
  EXPECT_TRUE(all_close(lse, values_of(hlse), kF32Relative, 1e-5)) << "lse (token-major on the device)";

  // The backward from the device's own forward results, on both sides.
  const DeviceTensor gdq(DType::BF16, q_shape), gdk(DType::BF16, kv_shape), gdv(DType::BF16, kv_shape);
  const DeviceTensor gdqkv(DType::BF16, qkv_shape);
  const Tensor dq = heads_view(gdqkv, 0, c.heads), dk = heads_view(gdqkv, c.heads, c.kv_heads);
  const Tensor dv = heads_view(gdqkv, c.heads + c.kv_heads, c.kv_heads);
  ops::flash_attention_backward(dq, dk, dv, gdout, gq, gk, gv, gout, glse, gdoc_ids, cudnn);
  const OwnedTensor hdq(DType::F64, q_shape), hdk(DType::F64, kv_shape), hdv(DType::F64, kv_shape);
  ops::flash_attention_backward(hdq, hdk, hdv, hdout, hq, hk, hv, host_f64(gout.download(), q_shape),
                                host_f64(lse, lse_shape), hdoc_ids, cpu);
  // The gradients as the fused buffer holds them, head by head.
  const DeviceTensor got_dq(DType::BF16, q_shape), got_dk(DType::BF16, kv_shape), got_dv(DType::BF16, kv_shape);
  ops::copy(got_dq, dq);
  ops::copy(got_dk, dk);
  ops::copy(got_dv, dv);
  EXPECT_TRUE(close_to_bf16_accuracy(got_dq.download(), values_of(hdq))) << "dq";
  EXPECT_TRUE(close_to_bf16_accuracy(got_dk.download(), values_of(hdk))) << "dk";
  EXPECT_TRUE(close_to_bf16_accuracy(got_dv.download(), values_of(hdv))) << "dv";
}

TEST_F(CudnnAttention, DocumentsGqaCausalAndFullMatchTheCpuOp) {
  for (const bool causal : {true, false})
    for (const bool documents : {true, false}) {
      check_case({2, 7, 4, 2, 16, causal, documents});
      check_case({1, 70, 4, 1, 64, causal, documents});
    }
}

TEST_F(CudnnAttention, LongerRowsAndHeadDim128MatchTheCpuOp) {
  check_case({2, 130, 4, 2, 64, true, true});
  check_case({1, 40, 2, 2, 128, true, false});
}

// Everything cuDNN cannot take is refused before it runs, naming what and the fix.
TEST_F(CudnnAttention, WhatCudnnCannotTakeIsRefused) {
  const Shape shape{1, 8, 2, 16};
  const DeviceTensor q(DType::BF16, shape), k(DType::BF16, shape), v(DType::BF16, shape), out(DType::BF16, shape);
  const DeviceTensor lse(DType::F32, {1, 2, 8});
  const ops::DocumentRuns runs = ops::document_runs({}, 1, 8);
  ops::AttentionOptions cudnn{.causal = true, .softmax_scale = 0.0, .library = ops::AttentionLibrary::cudnn,
                              .documents = &runs};
  const DeviceTensor q32(DType::F32, shape), k32(DType::F32, shape), v32(DType::F32, shape), out32(DType::F32, shape);
  EXPECT_NE(error_of([&] { ops::flash_attention_forward(out32, lse, q32, k32, v32, {}, cudnn); }).find("bf16"),
            std::string::npos);
  const ops::DocumentRuns wrong = {{0, 0, 3}, {0, 3, 4}};  // 7 of 8 tokens
  cudnn.documents = &wrong;
  EXPECT_NE(error_of([&] { ops::flash_attention_forward(out, lse, q, k, v, {}, cudnn); }).find("document runs"),
            std::string::npos);
  cudnn.documents = nullptr;
  EXPECT_NE(error_of([&] { ops::flash_attention_forward(out, lse, q, k, v, {}, cudnn); }).find("document runs"),
            std::string::npos);
  // More head dim than cuDNN's fused kernels take (256).
  const Shape wide{1, 8, 1, 512};
  const DeviceTensor qw(DType::BF16, wide), kw(DType::BF16, wide), vw(DType::BF16, wide), ow(DType::BF16, wide);
  const DeviceTensor lse1(DType::F32, {1, 1, 8});
  cudnn.documents = &runs;
  EXPECT_NE(error_of([&] { ops::flash_attention_forward(ow, lse1, qw, kw, vw, {}, cudnn); }).find("at most 256"),
            std::string::npos);
  // On the CPU there is no cuDNN.
  OwnedTensor hq(DType::F32, shape), hout(DType::F32, shape), hlse(DType::F32, {1, 2, 8});
  EXPECT_NE(error_of([&] { ops::flash_attention_forward(hout, hlse, hq, hq, hq, {}, cudnn); }).find("train.attention: flash"),
            std::string::npos);
}

// The frontend's own validation of the graphs (host only, aimed at sm_90): what it refuses is
// refused with its reason, before any GPU work.
TEST_F(CudnnAttention, TheFrontendValidatesEachGraph) {
  const auto problem = [](std::int64_t dim) {
    cudnn_sdpa::Problem p;
    p.sequences = 4, p.max_len = 16, p.heads = 4, p.kv_heads = 2, p.dim = dim, p.scale = 0.125f;
    p.q = p.k = p.v = {dim, 8 * dim};  // a fused qkv row
    p.o = {dim, 4 * dim};
    return p;
  };
  EXPECT_NO_THROW(cudnn_sdpa::validate_forward(problem(64)));
  EXPECT_NO_THROW(cudnn_sdpa::validate_backward(problem(128)));
  EXPECT_NE(error_of([&] { cudnn_sdpa::validate_forward(problem(12)); }).find("cuDNN refuses the forward graph"),
            std::string::npos);
  EXPECT_NE(error_of([&] { cudnn_sdpa::validate_backward(problem(264)); }).find("less than or equal to 256"),
            std::string::npos);
  cudnn_sdpa::Problem grouped = problem(64);
  grouped.kv_heads = 3;
  EXPECT_NE(error_of([&] { cudnn_sdpa::validate_forward(grouped); }).find("not a multiple of 3"), std::string::npos);
}

#if KILN_CUDA_EMULATED
// Runs that tile the batch but are not doc_ids' runs would attend across a document boundary on
// the GPU without any error; the emulated device compares them with the ids.
TEST_F(CudnnAttention, RunsThatAreNotTheDocumentIdsAreCaughtOnTheEmulatedDevice) {
  const Shape shape{1, 8, 2, 16};
  const DeviceTensor q(DType::BF16, shape), k(DType::BF16, shape), v(DType::BF16, shape), out(DType::BF16, shape);
  const DeviceTensor lse(DType::F32, {1, 2, 8});
  OwnedTensor host_docs(DType::I32, {1, 8});
  for (int t = 0; t < 8; ++t) host_docs.data<std::int32_t>()[t] = t < 3 ? 0 : 1;
  const DeviceTensor docs(DType::I32, {1, 8});
  ops::copy(docs, host_docs);
  const ops::DocumentRuns whole_row = ops::document_runs({}, 1, 8);
  const ops::AttentionOptions cudnn{.causal = true, .softmax_scale = 0.0, .library = ops::AttentionLibrary::cudnn,
                                    .documents = &whole_row};
  EXPECT_NE(error_of([&] { ops::flash_attention_forward(out, lse, q, k, v, docs, cudnn); }).find("not the 2 runs"),
            std::string::npos);
}
#endif

TEST(DocumentRuns, RunsOfEqualIdsInEachRowOrOneRunPerRow) {
  const auto spans = [](const ops::DocumentRuns& runs) {
    std::vector<std::vector<std::int64_t>> out;
    for (const ops::DocumentRun& run : runs) out.push_back({run.row, run.start, run.length});
    return out;
  };
  // Row 1 starts a run although its first id equals row 0's last; the 4 after the 7 is a new run.
  EXPECT_EQ(spans(ops::document_runs({4, 4, 7, 4, 4, 4, 1, 1}, 2, 4)),
            (std::vector<std::vector<std::int64_t>>{{0, 0, 2}, {0, 2, 1}, {0, 3, 1}, {1, 0, 2}, {1, 2, 2}}));
  EXPECT_EQ(spans(ops::document_runs({}, 3, 5)),
            (std::vector<std::vector<std::int64_t>>{{0, 0, 5}, {1, 0, 5}, {2, 0, 5}}));
  EXPECT_THROW(ops::document_runs({1, 2, 3}, 2, 4), kiln::Error);
}

}  // namespace
}  // namespace kiln::cuda_test
