// bf16 storage in every op: each op run on bf16 tensors must give the fp32 op's result on the
// same (bf16-valued) inputs, rounded once to bf16 (|error| <= 2^-8 |fp32 result|), and its
// f32 outputs (parameter gradients, statistics, loss sums) must match the fp32 op's.
// Shapes are awkward on purpose: C not a multiple of 8 or 16, one-row batches, odd vocabularies.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cpu/bf16.hpp"
#include "tests/kernels/kernel_testing.hpp"

namespace kiln {
namespace {

using testing::random_tensor;
using testing::relative_error;
using testing::to_vector;

// The same values twice: as bf16 and as f32 (the bf16 values widened, so both ops see
// identical inputs).
struct Pair {
  OwnedTensor f32, bf16;
};

Pair random_pair(Shape shape, std::uint64_t seed, double low = -1.0, double high = 1.0) {
  const OwnedTensor source = random_tensor(DType::F32, shape, seed, low, high);
  Pair pair{OwnedTensor(DType::F32, shape), OwnedTensor(DType::BF16, shape)};
  ops::copy(pair.bf16, source);
  ops::copy(pair.f32, pair.bf16);
  return pair;
}

// An f32 tensor, given to both runs (parameter gradients, f32 statistics).
OwnedTensor random_f32(Shape shape, std::uint64_t seed) { return random_tensor(DType::F32, shape, seed); }

OwnedTensor copy_of(const Tensor& tensor) {
  OwnedTensor result(tensor.dtype, tensor.shape);
  ops::copy(result, tensor);
  return result;
}

// Every element of `actual` (bf16) is the f32 `expected` rounded once: within half a bf16 ulp,
// which is at most 2^-8 of the value.
void expect_rounded_once(const Tensor& actual, const Tensor& expected, const char* what) {
  ASSERT_EQ(actual.dtype, DType::BF16) << what;
  const std::vector<double> got = to_vector(actual), want = to_vector(expected);
  ASSERT_EQ(got.size(), want.size()) << what;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << "[" << i << "]";
      continue;
    }
    EXPECT_LE(std::fabs(got[i] - want[i]), std::ldexp(std::fabs(want[i]), -8))
        << what << "[" << i << "]: bf16 " << got[i] << " vs f32 " << want[i];
  }
}

void expect_f32_close(const Tensor& actual, const Tensor& expected, const char* what) {
  ASSERT_EQ(actual.dtype, DType::F32) << what;
  EXPECT_LE(relative_error(to_vector(actual), to_vector(expected)), 1e-6) << what;
}

// Runs `call` and expects a kiln::Error whose message contains every one of `parts`.
void expect_refused(const std::function<void()>& call, std::initializer_list<std::string> parts) {
  try {
    call();
    ADD_FAILURE() << "expected kiln::Error";
  } catch (const Error& error) {
    for (const std::string& part : parts) EXPECT_NE(std::string(error.what()).find(part), std::string::npos) << error.what();
  }
}

TEST(Bf16Conversion, InlineRoundingMatchesToBfloat16BitForBit) {
  std::vector<float> values = {0.0f, -0.0f, 1.0f, 1.00390625f, 1.01171875f, 3.14159265f, -2.7182818f,
                               1e-40f, -1e-42f, 3.3895e38f, std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                               std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN()};
  const OwnedTensor more = random_tensor(DType::F32, {997}, 7, -1e3, 1e3);
  for (std::int64_t i = 0; i < more.numel(); ++i) values.push_back(more.data<float>()[i]);
  for (float value : values) {
    EXPECT_EQ(cpu::float_to_bf16_bits(value), to_bfloat16(value).bits) << value;
    EXPECT_EQ(std::bit_cast<std::uint32_t>(cpu::bf16_bits_to_float(to_bfloat16(value).bits)),
              std::bit_cast<std::uint32_t>(to_float(to_bfloat16(value))));
  }
}

TEST(Bf16Conversion, VectorisedCopyMatchesElementwiseRoundingAndKeepsStrides) {
  const OwnedTensor wide = random_tensor(DType::F32, {5, 37}, 3);
  OwnedTensor narrow(DType::BF16, {5, 37});
  ops::copy(narrow, wide);
  for (std::int64_t i = 0; i < wide.numel(); ++i)
    EXPECT_EQ(narrow.data<BFloat16>()[i].bits, to_bfloat16(wide.data<float>()[i]).bits);
  // A strided bf16 column slice widened into a dense f32 tensor and back.
  const Tensor slice = narrow.tensor().narrow(1, 3, 11);
  OwnedTensor dense(DType::F32, slice.shape);
  ops::copy(dense, slice);
  for (std::int64_t r = 0; r < 5; ++r)
    for (std::int64_t c = 0; c < 11; ++c)
      EXPECT_EQ(dense.data<float>()[r * 11 + c], to_float(narrow.data<BFloat16>()[r * 37 + 3 + c]));
  OwnedTensor target(DType::BF16, {5, 37});
  ops::copy(target.tensor().narrow(1, 3, 11), dense);
  for (std::int64_t r = 0; r < 5; ++r) {
    EXPECT_EQ(target.data<BFloat16>()[r * 37 + 2].bits, 0);  // outside the slice: untouched
    EXPECT_EQ(target.data<BFloat16>()[r * 37 + 3].bits, narrow.data<BFloat16>()[r * 37 + 3].bits);
  }
}

TEST(Bf16Ops, LinearForwardAndBackwardKeepF32WeightGradients) {
  for (const std::int64_t rows : {std::int64_t{1}, std::int64_t{6}}) {
    const Pair x = random_pair({rows, 13}, 1), w = random_pair({7, 13}, 2), b = random_pair({7}, 3);
    Pair y{OwnedTensor(DType::F32, {rows, 7}), OwnedTensor(DType::BF16, {rows, 7})};
    ops::linear_forward(y.f32, x.f32, w.f32, b.f32);
    ops::linear_forward(y.bf16, x.bf16, w.bf16, b.bf16);
    expect_rounded_once(y.bf16, y.f32, "y");

    const Pair dy = random_pair({rows, 7}, 4);
    Pair dx = random_pair({rows, 13}, 5);  // accumulated into
    const OwnedTensor dw0 = random_f32({7, 13}, 6), db0 = random_f32({7}, 7);
    const OwnedTensor dw_ref = copy_of(dw0), db_ref = copy_of(db0), dw = copy_of(dw0), db = copy_of(db0);
    ops::linear_backward(dx.f32, dw_ref, db_ref, dy.f32, x.f32, w.f32, ops::Accumulate::Yes);
    ops::linear_backward(dx.bf16, dw, db, dy.bf16, x.bf16, w.bf16, ops::Accumulate::Yes);
    expect_rounded_once(dx.bf16, dx.f32, "dx");
    expect_f32_close(dw, dw_ref, "dw");
    expect_f32_close(db, db_ref, "db");
  }
}

TEST(Bf16Ops, MatmulWithTransposesAndBeta) {
  const Pair a = random_pair({9, 5}, 11), b = random_pair({3, 9}, 12);
  Pair c = random_pair({5, 3}, 13);
  ops::matmul(c.f32, a.f32, b.f32, true, true, 0.5, 0.25);
  ops::matmul(c.bf16, a.bf16, b.bf16, true, true, 0.5, 0.25);
  expect_rounded_once(c.bf16, c.f32, "c");
}

TEST(Bf16Ops, LayerNormForwardAndBackward) {
  const std::int64_t C = 19;
  const Pair x = random_pair({2, 3, C}, 21), w = random_pair({C}, 22), b = random_pair({C}, 23);
  Pair y{OwnedTensor(DType::F32, {2, 3, C}), OwnedTensor(DType::BF16, {2, 3, C})};
  OwnedTensor mean_ref(DType::F32, {6}), rstd_ref(DType::F32, {6}), mean(DType::F32, {6}), rstd(DType::F32, {6});
  ops::layernorm_forward(y.f32, mean_ref, rstd_ref, x.f32, w.f32, b.f32);
  ops::layernorm_forward(y.bf16, mean, rstd, x.bf16, w.bf16, b.bf16);
  expect_rounded_once(y.bf16, y.f32, "y");
  expect_f32_close(mean, mean_ref, "mean");
  expect_f32_close(rstd, rstd_ref, "rstd");
  // Statistics stored in bf16 are the f32 ones rounded once, too.
  Pair mean_b{OwnedTensor(DType::F32, {6}), OwnedTensor(DType::BF16, {6})};
  Pair rstd_b{OwnedTensor(DType::F32, {6}), OwnedTensor(DType::BF16, {6})};
  ops::layernorm_forward(y.bf16, mean_b.bf16, rstd_b.bf16, x.bf16, w.bf16, b.bf16);
  expect_rounded_once(mean_b.bf16, mean_ref, "bf16 mean");
  expect_rounded_once(rstd_b.bf16, rstd_ref, "bf16 rstd");

  const Pair dy = random_pair({2, 3, C}, 24);
  Pair dx{OwnedTensor(DType::F32, {2, 3, C}), OwnedTensor(DType::BF16, {2, 3, C})};
  const OwnedTensor dw0 = random_f32({C}, 25), db0 = random_f32({C}, 26);
  const OwnedTensor dw_ref = copy_of(dw0), db_ref = copy_of(db0), dw = copy_of(dw0), db = copy_of(db0);
  ops::layernorm_backward(dx.f32, dw_ref, db_ref, dy.f32, x.f32, w.f32, mean_ref, rstd_ref);
  ops::layernorm_backward(dx.bf16, dw, db, dy.bf16, x.bf16, w.bf16, mean, rstd);
  expect_rounded_once(dx.bf16, dx.f32, "dx");
  expect_f32_close(dw, dw_ref, "dgamma");
  expect_f32_close(db, db_ref, "dbeta");
}

TEST(Bf16Ops, RmsNormForwardAndBackwardOnOneRow) {
  const std::int64_t C = 21;
  const Pair x = random_pair({1, C}, 31), w = random_pair({C}, 32);
  Pair y{OwnedTensor(DType::F32, {1, C}), OwnedTensor(DType::BF16, {1, C})};
  OwnedTensor rstd_ref(DType::F32, {1}), rstd(DType::F32, {1});
  ops::rmsnorm_forward(y.f32, rstd_ref, x.f32, w.f32);
  ops::rmsnorm_forward(y.bf16, rstd, x.bf16, w.bf16);
  expect_rounded_once(y.bf16, y.f32, "y");
  expect_f32_close(rstd, rstd_ref, "rstd");

  const Pair dy = random_pair({1, C}, 33);
  Pair dx = random_pair({1, C}, 34);
  const OwnedTensor dw0 = random_f32({C}, 35);
  const OwnedTensor dw_ref = copy_of(dw0), dw = copy_of(dw0);
  ops::rmsnorm_backward(dx.f32, dw_ref, dy.f32, x.f32, w.f32, rstd_ref, ops::Accumulate::Yes);
  ops::rmsnorm_backward(dx.bf16, dw, dy.bf16, x.bf16, w.bf16, rstd, ops::Accumulate::Yes);
  expect_rounded_once(dx.bf16, dx.f32, "dx");
  expect_f32_close(dw, dw_ref, "dw");
}

TEST(Bf16Ops, GeluForwardInPlaceAndBackwardAccumulating) {
  const Pair x = random_pair({3, 11}, 41, -3, 3), dy = random_pair({3, 11}, 42);
  Pair y{copy_of(x.f32), copy_of(x.bf16)};
  ops::gelu_forward(y.f32, y.f32);  // in place
  ops::gelu_forward(y.bf16, y.bf16);
  expect_rounded_once(y.bf16, y.f32, "y");
  Pair dx = random_pair({3, 11}, 43);
  ops::gelu_backward(dx.f32, dy.f32, x.f32, ops::Accumulate::Yes);
  ops::gelu_backward(dx.bf16, dy.bf16, x.bf16, ops::Accumulate::Yes);
  expect_rounded_once(dx.bf16, dx.f32, "dx");
}

TEST(Bf16Ops, SwigluOnTheHalvesOfOneFusedBuffer) {
  const std::int64_t F = 9;
  const Pair fused = random_pair({4, 2 * F}, 51, -2, 2), dout = random_pair({4, F}, 52);
  auto gate = [&](const Tensor& t) { return t.narrow(1, 0, F); };
  auto up = [&](const Tensor& t) { return t.narrow(1, F, F); };
  Pair out{OwnedTensor(DType::F32, {4, F}), OwnedTensor(DType::BF16, {4, F})};
  ops::swiglu_forward(out.f32, gate(fused.f32), up(fused.f32));
  ops::swiglu_forward(out.bf16, gate(fused.bf16), up(fused.bf16));
  expect_rounded_once(out.bf16, out.f32, "out");
  Pair dfused{OwnedTensor(DType::F32, {4, 2 * F}), OwnedTensor(DType::BF16, {4, 2 * F})};
  ops::swiglu_backward(gate(dfused.f32), up(dfused.f32), dout.f32, gate(fused.f32), up(fused.f32));
  ops::swiglu_backward(gate(dfused.bf16), up(dfused.bf16), dout.bf16, gate(fused.bf16), up(fused.bf16));
  expect_rounded_once(dfused.bf16, dfused.f32, "dgate|dup");
}

TEST(Bf16Ops, RopeForwardAndBackwardOnAStridedQkvView) {
  // q inside a fused [B, T, (Hq + 2 Hkv) * Dh] buffer, rotated in place.
  const std::int64_t B = 2, T = 3, H = 2, D = 6, width = 4 * H * D;
  const Pair qkv = random_pair({B, T, width}, 61);
  auto q = [&](const Tensor& t) {
    return Tensor(t.ptr, t.dtype, {B, T, H, D}, {T * width, width, D, 1}, Device::Cpu);
  };
  std::int32_t positions[B * T] = {0, 1, 2, 5, 0, 1};
  const Tensor pos = Tensor::of(positions, {B, T});
  const ops::RopeConfig config;
  Pair y{copy_of(qkv.f32), copy_of(qkv.bf16)};
  ops::rope_forward(q(y.f32), q(y.f32), pos, config);
  ops::rope_forward(q(y.bf16), q(y.bf16), pos, config);
  expect_rounded_once(y.bf16, y.f32, "rotated qkv (k, v untouched)");
  ops::copy(y.f32, y.bf16);  // the backward starts from the stored (bf16) values
  ops::rope_backward(q(y.f32), q(y.f32), pos, config);
  ops::rope_backward(q(y.bf16), q(y.bf16), pos, config);
  expect_rounded_once(y.bf16, y.f32, "rotated back");
}

TEST(Bf16Ops, EmbeddingForwardAndBackwardIntoAnF32TableGradient) {
  const std::int64_t V = 11, C = 5;
  const Pair table = random_pair({V, C}, 71);
  std::int32_t ids[7] = {3, 10, 0, 3, 7, 10, 1};
  const Tensor id = Tensor::of(ids, {7});
  Pair out = random_pair({7, C}, 72);  // + learned positions
  ops::embedding_forward(out.f32, id, table.f32, ops::Accumulate::Yes);
  ops::embedding_forward(out.bf16, id, table.bf16, ops::Accumulate::Yes);
  expect_rounded_once(out.bf16, out.f32, "out");

  const Pair dout = random_pair({7, C}, 73);
  const OwnedTensor dtable0 = random_f32({V, C}, 74);
  const OwnedTensor dtable_ref = copy_of(dtable0), dtable = copy_of(dtable0);
  ops::embedding_backward(dtable_ref, dout.f32, id);
  ops::embedding_backward(dtable, dout.bf16, id);
  expect_f32_close(dtable, dtable_ref, "dtable");

  Pair local{OwnedTensor(DType::F32, {7, C}), OwnedTensor(DType::BF16, {7, C})};
  ops::embedding_forward_vocab_parallel(local.f32, id, table.f32.tensor().narrow(0, 0, 6), 2);
  ops::embedding_forward_vocab_parallel(local.bf16, id, table.bf16.tensor().narrow(0, 0, 6), 2);
  expect_rounded_once(local.bf16, local.f32, "vocab-parallel out");
}

TEST(Bf16Ops, CrossEntropyBothHalvesWithAnOddVocabulary) {
  const std::int64_t N = 5, V = 13, valid = 11;
  const Pair logits = random_pair({N, V}, 81, -4, 4);
  std::int32_t targets[N] = {0, 10, 4, 7, 2};
  std::uint8_t mask[N] = {1, 1, 0, 1, 1};
  const Tensor target = Tensor::of(targets, {N}), keep = Tensor::of(mask, {N});
  Pair losses{OwnedTensor(DType::F32, {N}), OwnedTensor(DType::BF16, {N})};
  OwnedTensor lse_ref(DType::F32, {N}), lse(DType::F32, {N});
  OwnedTensor sum_ref(DType::F64, {2}), sum(DType::F64, {2});
  ops::cross_entropy_forward(losses.f32, lse_ref, sum_ref, logits.f32, target, keep, valid);
  ops::cross_entropy_forward(losses.bf16, lse, sum, logits.bf16, target, keep, valid);
  expect_rounded_once(losses.bf16, losses.f32, "losses");
  expect_f32_close(lse, lse_ref, "lse");
  // The loss sum is taken from the f32 losses before they are rounded.
  EXPECT_DOUBLE_EQ(ops::read_loss_sum(sum).sum, ops::read_loss_sum(sum_ref).sum);
  EXPECT_EQ(ops::read_loss_sum(sum).count, 4);

  Pair dlogits{copy_of(logits.f32), copy_of(logits.bf16)};  // in place, as the model does
  ops::cross_entropy_backward(dlogits.f32, dlogits.f32, target, lse_ref, keep, valid, 0.25);
  ops::cross_entropy_backward(dlogits.bf16, dlogits.bf16, target, lse, keep, valid, 0.25);
  expect_rounded_once(dlogits.bf16, dlogits.f32, "dlogits");
}

TEST(Bf16Ops, VocabParallelCrossEntropyStatistics) {
  const std::int64_t N = 3, V_local = 7, valid_local = 6, first_id = 7;
  const Pair logits = random_pair({N, V_local}, 91, -3, 3);
  std::int64_t targets[N] = {8, 2, 12};
  const Tensor target = Tensor::of(targets, {N});
  Pair row_max{OwnedTensor(DType::F32, {N}), OwnedTensor(DType::BF16, {N})};
  ops::cross_entropy_local_max(row_max.f32, logits.f32, valid_local);
  ops::cross_entropy_local_max(row_max.bf16, logits.bf16, valid_local);
  expect_rounded_once(row_max.bf16, row_max.f32, "row_max");  // a max of bf16 values: exact
  // f32 statistics from bf16 logits, as the model keeps them.
  OwnedTensor sum_exp_ref(DType::F32, {N}), picked_ref(DType::F32, {N}), sum_exp(DType::F32, {N}),
      picked(DType::F32, {N});
  ops::cross_entropy_local_sums(sum_exp_ref, picked_ref, logits.f32, target, row_max.f32, valid_local, first_id);
  ops::cross_entropy_local_sums(sum_exp, picked, logits.bf16, target, row_max.f32, valid_local, first_id);
  expect_f32_close(sum_exp, sum_exp_ref, "sum_exp");
  expect_f32_close(picked, picked_ref, "target_logit");
  Pair losses{OwnedTensor(DType::F32, {N}), OwnedTensor(DType::BF16, {N})};
  OwnedTensor lse(DType::F32, {N}), lse_ref(DType::F32, {N}), total(DType::F64, {2}), total_ref(DType::F64, {2});
  ops::cross_entropy_finish(losses.f32, lse_ref, total_ref, row_max.f32, sum_exp_ref, picked_ref, {});
  ops::cross_entropy_finish(losses.bf16, lse, total, row_max.f32, sum_exp, picked, {});
  expect_rounded_once(losses.bf16, losses.f32, "losses");
  EXPECT_DOUBLE_EQ(ops::read_loss_sum(total).sum, ops::read_loss_sum(total_ref).sum);
  Pair dlogits{OwnedTensor(DType::F32, {N, V_local}), OwnedTensor(DType::BF16, {N, V_local})};
  ops::cross_entropy_backward_vocab_parallel(dlogits.f32, logits.f32, target, lse_ref, {}, valid_local, first_id, 0.5);
  ops::cross_entropy_backward_vocab_parallel(dlogits.bf16, logits.bf16, target, lse, {}, valid_local, first_id, 0.5);
  expect_rounded_once(dlogits.bf16, dlogits.f32, "dlogits");
}

// Flash attention on q, k, v viewed inside one fused bf16 QKV buffer, GQA (4 query heads on
// 2 kv heads), packed documents, and a decode step (Tq = 1 < Tk).
TEST(Bf16Ops, FlashAttentionGqaDocumentsAndDecode) {
  const std::int64_t B = 2, T = 5, Hq = 4, Hkv = 2, D = 12, width = (Hq + 2 * Hkv) * D;
  const Pair qkv = random_pair({B, T, width}, 101);
  auto view = [&](const Tensor& t, std::int64_t first_head, std::int64_t heads, std::int64_t t0, std::int64_t len) {
    auto* base = static_cast<std::byte*>(t.ptr) + (t0 * width + first_head * D) * static_cast<std::int64_t>(t.element_size());
    return Tensor(base, t.dtype, {B, len, heads, D}, {T * width, width, D, 1}, Device::Cpu);
  };
  std::int32_t docs[B * T] = {0, 0, 1, 1, 1, 4, 4, 4, 4, 9};
  const Tensor doc_ids = Tensor::of(docs, {B, T});
  for (const std::int64_t Tq : {T, std::int64_t{1}}) {
    const std::int64_t t0 = T - Tq;
    auto q = [&](const Tensor& t) { return view(t, 0, Hq, t0, Tq); };
    auto k = [&](const Tensor& t) { return view(t, Hq, Hkv, 0, T); };
    auto v = [&](const Tensor& t) { return view(t, Hq + Hkv, Hkv, 0, T); };
    Pair out{OwnedTensor(DType::F32, {B, Tq, Hq, D}), OwnedTensor(DType::BF16, {B, Tq, Hq, D})};
    OwnedTensor lse_ref(DType::F32, {B, Hq, Tq}), lse(DType::F32, {B, Hq, Tq});
    ops::flash_attention_forward(out.f32, lse_ref, q(qkv.f32), k(qkv.f32), v(qkv.f32), doc_ids);
    ops::flash_attention_forward(out.bf16, lse, q(qkv.bf16), k(qkv.bf16), v(qkv.bf16), doc_ids);
    expect_rounded_once(out.bf16, out.f32, "out");
    expect_f32_close(lse, lse_ref, "lse");
    if (Tq != T) continue;  // the backward runs on whole sequences
    // The backward reads the stored (bf16) output: give the f32 reference the same values.
    const OwnedTensor out_seen = copy_of(out.bf16);
    const OwnedTensor out_seen_f32 = testing::converted(out_seen, DType::F32);
    const Pair dout = random_pair({B, T, Hq, D}, 102);
    Pair dqkv{OwnedTensor(DType::F32, {B, T, width}), OwnedTensor(DType::BF16, {B, T, width})};
    ops::flash_attention_backward(q(dqkv.f32), k(dqkv.f32), v(dqkv.f32), dout.f32, q(qkv.f32), k(qkv.f32),
                                  v(qkv.f32), out_seen_f32, lse_ref, doc_ids);
    ops::flash_attention_backward(q(dqkv.bf16), k(dqkv.bf16), v(dqkv.bf16), dout.bf16, q(qkv.bf16),
                                  k(qkv.bf16), v(qkv.bf16), out_seen, lse, doc_ids);
    expect_rounded_once(dqkv.bf16, dqkv.f32, "dq|dk|dv");
  }
}

TEST(Bf16Ops, ElementwiseAddScaleFillZero) {
  const Pair a = random_pair({3, 17}, 111), b = random_pair({3, 17}, 112);
  Pair out{OwnedTensor(DType::F32, {3, 17}), OwnedTensor(DType::BF16, {3, 17})};
  ops::add(out.f32, a.f32, b.f32);
  ops::add(out.bf16, a.bf16, b.bf16);
  expect_rounded_once(out.bf16, out.f32, "add");
  ops::copy(out.f32, out.bf16);  // both start from the stored sums
  ops::add_to(out.f32, a.f32);
  ops::add_to(out.bf16, a.bf16);
  expect_rounded_once(out.bf16, out.f32, "add_to");
  Pair y = random_pair({3, 17}, 113);
  ops::axpy(y.f32, -0.3, a.f32);
  ops::axpy(y.bf16, -0.3, a.bf16);
  expect_rounded_once(y.bf16, y.f32, "axpy");
  Pair x = random_pair({3, 17}, 114);
  ops::scale(x.f32, 1.7);
  ops::scale(x.bf16, 1.7);
  expect_rounded_once(x.bf16, x.f32, "scale");
  ops::fill(x.bf16, 0.1);
  for (std::int64_t i = 0; i < x.bf16.numel(); ++i) EXPECT_EQ(x.bf16.data<BFloat16>()[i].bits, to_bfloat16(0.1f).bits);
  ops::zero(x.bf16);
  for (std::int64_t i = 0; i < x.bf16.numel(); ++i) EXPECT_EQ(x.bf16.data<BFloat16>()[i].bits, 0);
}

TEST(Bf16Ops, SumOfSquaresAndNonfiniteFlagReadBf16) {
  const Pair x = random_pair({40003}, 121);
  OwnedTensor total(DType::F64, {1}), total_ref(DType::F64, {1});
  const std::vector<ops::FlatRange> ranges = {{5, 100}, {20000, 20003}};
  ops::sum_of_squares(total_ref, x.f32, ranges);
  ops::sum_of_squares(total, x.bf16, ranges);
  EXPECT_NEAR(*total.data<double>(), *total_ref.data<double>(), 1e-12 * *total_ref.data<double>());
  ops::sum_of_squares(total_ref, x.f32);
  ops::sum_of_squares(total, x.bf16);
  EXPECT_NEAR(*total.data<double>(), *total_ref.data<double>(), 1e-12 * *total_ref.data<double>());

  OwnedTensor flag(DType::F64, {1});
  ops::nonfinite_flag(flag, x.bf16);
  EXPECT_EQ(*flag.data<double>(), 0.0);
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity()}) {
    OwnedTensor grad = copy_of(x.bf16);
    grad.data<BFloat16>()[39999] = to_bfloat16(bad);
    ops::nonfinite_flag(flag, grad);
    EXPECT_EQ(*flag.data<double>(), 1.0) << bad;
  }
}

TEST(Bf16Ops, NanInABf16ActivationPropagatesToTheGradientFlag) {
  Pair x = random_pair({2, 9}, 131), w = random_pair({4, 9}, 132);
  x.bf16.data<BFloat16>()[12] = to_bfloat16(std::numeric_limits<float>::quiet_NaN());
  OwnedTensor y(DType::BF16, {2, 4}), flag(DType::F64, {1});
  ops::linear_forward(y, x.bf16, w.bf16);
  for (std::int64_t j = 0; j < 4; ++j) {
    EXPECT_FALSE(std::isnan(to_float(y.data<BFloat16>()[j])));     // row 0 is clean
    EXPECT_TRUE(std::isnan(to_float(y.data<BFloat16>()[4 + j])));  // row 1 read the NaN
  }
  OwnedTensor dw(DType::F32, {4, 9});
  ops::linear_backward({}, dw, {}, y, x.bf16, w.bf16);
  ops::nonfinite_flag(flag, dw);
  EXPECT_EQ(*flag.data<double>(), 1.0);
  ops::nonfinite_flag(flag, y);
  EXPECT_EQ(*flag.data<double>(), 1.0);
}

TEST(Bf16Ops, AdamwSegmentsRefreshTheBf16WorkingCopyInTheSamePass) {
  const std::int64_t P = 29;
  const OwnedTensor params0 = random_f32({P}, 141), grads = random_f32({P}, 142);
  const OwnedTensor m0 = random_tensor(DType::F32, {P}, 143, 0.0, 0.1), v0 = random_tensor(DType::F32, {P}, 144, 0.01, 0.1);
  const std::vector<ops::AdamWSegment> segments = {{0, 0, 10, true}, {10, 10, 19, false}};
  const ops::AdamWStep step{.lr = 0.01, .weight_decay = 0.1, .step = 3, .grad_scale = 0.5};
  const OwnedTensor p_ref = copy_of(params0), m_ref = copy_of(m0), v_ref = copy_of(v0);
  ops::adamw_step_segments(p_ref, grads, m_ref, v_ref, segments, step);
  const OwnedTensor p = copy_of(params0), m = copy_of(m0), v = copy_of(v0);
  OwnedTensor working(DType::BF16, {P});
  ops::adamw_step_segments(p, grads, m, v, segments, step, working);
  for (std::int64_t i = 0; i < P; ++i) {
    EXPECT_EQ(p.data<float>()[i], p_ref.data<float>()[i]) << i;  // the masters: the f32 step exactly
    EXPECT_EQ(m.data<float>()[i], m_ref.data<float>()[i]) << i;
    EXPECT_EQ(v.data<float>()[i], v_ref.data<float>()[i]) << i;
    EXPECT_EQ(working.data<BFloat16>()[i].bits, to_bfloat16(p_ref.data<float>()[i]).bits) << i;
  }
  OwnedTensor single(DType::BF16, {P});
  const OwnedTensor p1 = copy_of(params0), m1 = copy_of(m0), v1 = copy_of(v0);
  ops::adamw_step(p1, grads, m1, v1, step, true, single);
  EXPECT_EQ(single.data<BFloat16>()[3].bits, to_bfloat16(p1.data<float>()[3]).bits);
}

TEST(Bf16Ops, WrongDtypeCombinationsAreRefusedNamingTheArgument) {
  const Pair x = random_pair({2, 8}, 151), w = random_pair({3, 8}, 152), dy = random_pair({2, 3}, 153);
  OwnedTensor dw_bf16(DType::BF16, {3, 8}), y(DType::BF16, {2, 3});
  expect_refused([&] { ops::linear_backward({}, dw_bf16, {}, dy.bf16, x.bf16, w.bf16); },
                 {"ops::linear_backward", "`dw` is bf16[3, 8]", "stays f32"});
  const OwnedTensor w64(DType::F64, {3, 8});
  expect_refused([&] { ops::linear_forward(y, x.bf16, w64); },
                 {"ops::linear_forward", "`w` is f64[3, 8]", "`y` is bf16", "f64 does not mix"});
  const OwnedTensor x16(DType::F16, {2, 8});
  expect_refused([&] { ops::linear_forward(y, x16, w.bf16); }, {"`x` is f16[2, 8]", "take f32, bf16 or f64"});
  OwnedTensor p(DType::F32, {4}), m(DType::F32, {4}), v(DType::F32, {4}), g16(DType::BF16, {4});
  const std::vector<ops::AdamWSegment> all = {{0, 0, 4, true}};
  expect_refused([&] { ops::adamw_step_segments(p, g16, m, v, all, {}); },
                 {"ops::adamw_step_segments", "`grads` is bf16[4]", "f32"});
  OwnedTensor g(DType::F32, {4}), copy32(DType::F32, {4});
  expect_refused([&] { ops::adamw_step_segments(p, g, m, v, all, {}, copy32); },
                 {"`working_copy` is f32[4]", "expected bf16"});
  OwnedTensor p64(DType::F64, {4}), g64(DType::F64, {4}), m64(DType::F64, {4}), v64(DType::F64, {4}),
      copy16(DType::BF16, {4});
  expect_refused([&] { ops::adamw_step_segments(p64, g64, m64, v64, all, {}, copy16); },
                 {"`working_copy` needs f32 master weights", "`params` is f64[4]"});
  // A bf16 tensor where an op keeps f64 results.
  OwnedTensor total16(DType::BF16, {1});
  expect_refused([&] { ops::sum_of_squares(total16, x.bf16); }, {"`total` is bf16[1]", "expected one f64 element"});
}

}  // namespace
}  // namespace kiln
