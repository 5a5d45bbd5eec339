// Flash attention against a naive full-matrix attention (forward and backward), across
// sequence lengths, head dims, GQA ratios and packed documents; backward against finite
// differences; float against double; determinism; strided q/k/v inside a fused QKV buffer.
#include <gtest/gtest.h>
#include <omp.h>

#include "tests/kernels/kernel_testing.hpp"

namespace kiln {
namespace {

using testing::gradient_check;
using testing::random_tensor;
using testing::relative_error;
using testing::to_vector;

struct Case {
  int B = 1, Tq = 1, Tk = 1, Hq = 1, Hkv = 1, D = 16;
  bool causal = true;
  std::vector<std::int32_t> docs;  // [B, Tk], runs of equal ids; empty: no documents

  std::size_t q_index(int b, int i, int h, int d) const {
    return static_cast<std::size_t>(((b * Tq + i) * Hq + h) * D + d);
  }
  std::size_t k_index(int b, int j, int g, int d) const {
    return static_cast<std::size_t>(((b * Tk + j) * Hkv + g) * D + d);
  }
  bool visible(int b, int i, int j) const {
    const int position = Tk - Tq + i;
    if (causal && j > position) return false;
    return docs.empty() || docs[b * Tk + j] == docs[b * Tk + position];
  }
  double scale() const { return 1.0 / std::sqrt(double(D)); }
  Tensor doc_tensor() const { return docs.empty() ? Tensor{} : Tensor::of(docs.data(), {B, Tk}); }
};

// Random document runs of 1 .. Tk/2 + 1 tokens per batch row.
std::vector<std::int32_t> random_documents(int B, int T, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::int32_t> docs;
  for (int b = 0; b < B; ++b) {
    std::int32_t id = 0;
    int left = 0;
    for (int t = 0; t < T; ++t) {
      if (left == 0) {
        ++id;
        left = 1 + static_cast<int>(rng.below(static_cast<std::uint64_t>(T / 2 + 1)));
      }
      docs.push_back(id);
      --left;
    }
  }
  return docs;
}

// The probabilities of one query row over all keys (zero where masked).
std::vector<double> naive_probabilities(const Case& c, const std::vector<double>& q,
                                        const std::vector<double>& k, int b, int h, int i,
                                        double* lse) {
  const int g = h / (c.Hq / c.Hkv);
  std::vector<double> s(c.Tk, -INFINITY);
  double max_score = -INFINITY;
  for (int j = 0; j < c.Tk; ++j) {
    if (!c.visible(b, i, j)) continue;
    double dot = 0;
    for (int d = 0; d < c.D; ++d) dot += q[c.q_index(b, i, h, d)] * k[c.k_index(b, j, g, d)];
    s[j] = dot * c.scale();
    max_score = std::max(max_score, s[j]);
  }
  double sum = 0;
  for (int j = 0; j < c.Tk; ++j) sum += s[j] == -INFINITY ? 0 : std::exp(s[j] - max_score);
  for (int j = 0; j < c.Tk; ++j) s[j] = s[j] == -INFINITY ? 0 : std::exp(s[j] - max_score) / sum;
  if (lse) *lse = max_score + std::log(sum);
  return s;
}

struct NaiveForward {
  std::vector<double> out, lse;
};

NaiveForward naive_forward(const Case& c, const std::vector<double>& q,
                           const std::vector<double>& k, const std::vector<double>& v) {
  NaiveForward result{std::vector<double>(q.size()),
                      std::vector<double>(static_cast<std::size_t>(c.B * c.Hq * c.Tq))};
  for (int b = 0; b < c.B; ++b)
    for (int h = 0; h < c.Hq; ++h)
      for (int i = 0; i < c.Tq; ++i) {
        double lse = 0;
        const auto p = naive_probabilities(c, q, k, b, h, i, &lse);
        result.lse[(b * c.Hq + h) * c.Tq + i] = lse;
        for (int j = 0; j < c.Tk; ++j)
          for (int d = 0; d < c.D; ++d)
            result.out[c.q_index(b, i, h, d)] += p[j] * v[c.k_index(b, j, h / (c.Hq / c.Hkv), d)];
      }
  return result;
}

struct NaiveGradients {
  std::vector<double> dq, dk, dv;
};

// dS = P * (dP - rowsum(P * dP)), dq = scale dS k, dk = scale dS^T q, dv = P^T dout.
NaiveGradients naive_backward(const Case& c, const std::vector<double>& q,
                              const std::vector<double>& k, const std::vector<double>& v,
                              const std::vector<double>& dout) {
  NaiveGradients grads{std::vector<double>(q.size()), std::vector<double>(k.size()),
                       std::vector<double>(v.size())};
  for (int b = 0; b < c.B; ++b)
    for (int h = 0; h < c.Hq; ++h)
      for (int i = 0; i < c.Tq; ++i) {
        const int g = h / (c.Hq / c.Hkv);
        const auto p = naive_probabilities(c, q, k, b, h, i, nullptr);
        std::vector<double> dp(c.Tk);
        double p_dot_dp = 0;
        for (int j = 0; j < c.Tk; ++j) {
          for (int d = 0; d < c.D; ++d)
            dp[j] += dout[c.q_index(b, i, h, d)] * v[c.k_index(b, j, g, d)];
          p_dot_dp += p[j] * dp[j];
        }
        for (int j = 0; j < c.Tk; ++j) {
          const double ds = p[j] * (dp[j] - p_dot_dp);
          for (int d = 0; d < c.D; ++d) {
            grads.dq[c.q_index(b, i, h, d)] += c.scale() * ds * k[c.k_index(b, j, g, d)];
            grads.dk[c.k_index(b, j, g, d)] += c.scale() * ds * q[c.q_index(b, i, h, d)];
            grads.dv[c.k_index(b, j, g, d)] += p[j] * dout[c.q_index(b, i, h, d)];
          }
        }
      }
  return grads;
}

struct FlashRun {
  OwnedTensor out, lse, dq, dk, dv;
};

FlashRun run_flash(const Case& c, const Tensor& q, const Tensor& k, const Tensor& v,
                   const Tensor& dout) {
  const DType dtype = q.dtype;
  FlashRun run{OwnedTensor(dtype, {c.B, c.Tq, c.Hq, c.D}), OwnedTensor(dtype, {c.B, c.Hq, c.Tq}),
               OwnedTensor(dtype, {c.B, c.Tq, c.Hq, c.D}),
               OwnedTensor(dtype, {c.B, c.Tk, c.Hkv, c.D}),
               OwnedTensor(dtype, {c.B, c.Tk, c.Hkv, c.D})};
  ops::AttentionOptions options;
  options.causal = c.causal;
  ops::flash_attention_forward(run.out, run.lse, q, k, v, c.doc_tensor(), options);
  if (dout.defined())
    ops::flash_attention_backward(run.dq, run.dk, run.dv, dout, q, k, v, run.out, run.lse,
                                  c.doc_tensor(), options);
  return run;
}

// Errors relative to max(|expected|, 1): with one visible key dq and dk are exactly zero
// analytically, and both sides hold only rounding noise.
double error(const Tensor& actual, const std::vector<double>& expected) {
  return relative_error(to_vector(actual), expected, 1.0);
}

// Flash (f64 and f32) against the naive reference on one case.
void check_against_naive(const Case& c, std::uint64_t seed) {
  SCOPED_TRACE(::testing::Message()
               << "T=" << c.Tq << "/" << c.Tk << " D=" << c.D << " Hq=" << c.Hq << " Hkv=" << c.Hkv
               << " docs=" << !c.docs.empty() << " causal=" << c.causal);
  auto q = random_tensor(DType::F64, {c.B, c.Tq, c.Hq, c.D}, seed, -2, 2);
  auto k = random_tensor(DType::F64, {c.B, c.Tk, c.Hkv, c.D}, seed + 1, -2, 2);
  auto v = random_tensor(DType::F64, {c.B, c.Tk, c.Hkv, c.D}, seed + 2);
  auto dout = random_tensor(DType::F64, {c.B, c.Tq, c.Hq, c.D}, seed + 3);
  const auto expected = naive_forward(c, to_vector(q), to_vector(k), to_vector(v));
  const auto grads = naive_backward(c, to_vector(q), to_vector(k), to_vector(v), to_vector(dout));

  const FlashRun run = run_flash(c, q, k, v, dout);
  EXPECT_LT(error(run.out, expected.out), 1e-12);
  EXPECT_LT(error(run.lse, expected.lse), 1e-12);
  EXPECT_LT(error(run.dq, grads.dq), 1e-11);
  EXPECT_LT(error(run.dk, grads.dk), 1e-11);
  EXPECT_LT(error(run.dv, grads.dv), 1e-11);

  const auto f32 = [](const Tensor& t) { return testing::converted(t, DType::F32); };
  const FlashRun single = run_flash(c, f32(q), f32(k), f32(v), f32(dout));
  EXPECT_LT(error(single.out, expected.out), 2e-5);
  EXPECT_LT(error(single.dq, grads.dq), 5e-5);
  EXPECT_LT(error(single.dk, grads.dk), 5e-5);
  EXPECT_LT(error(single.dv, grads.dv), 5e-5);
}

TEST(FlashAttention, MatchesNaiveAcrossLengthsHeadDimsGqaAndDocuments) {
  std::uint64_t seed = 100;
  for (int T : {1, 7, 64, 130})
    for (int D : {16, 64, 128})
      for (int ratio : {1, 2, 4})
        for (bool documents : {false, true}) {
          Case c;
          c.B = 2;
          c.Tq = c.Tk = T;
          c.Hkv = 1;
          c.Hq = ratio;
          c.D = D;
          if (documents) c.docs = random_documents(c.B, T, seed);
          check_against_naive(c, seed += 10);
        }
}

TEST(FlashAttention, TwoKvHeadsAndNonCausalDocuments) {
  Case c;
  c.B = 2;
  c.Tq = c.Tk = 75;
  c.Hq = 4;
  c.Hkv = 2;
  c.D = 32;
  check_against_naive(c, 1);
  c.docs = random_documents(c.B, c.Tk, 2);
  check_against_naive(c, 3);
  c.causal = false;  // bidirectional inside each document
  check_against_naive(c, 4);
}

TEST(FlashAttention, FewerQueriesThanKeysActsAsKvCache) {
  Case c;
  c.B = 1;
  c.Tq = 5;
  c.Tk = 90;
  c.Hq = 2;
  c.Hkv = 1;
  c.D = 16;
  check_against_naive(c, 7);
  c.docs = random_documents(c.B, c.Tk, 8);
  check_against_naive(c, 9);
}

TEST(FlashAttention, BackwardMatchesFiniteDifferences) {
  Case c;
  c.Tq = c.Tk = 70;  // two query tiles and two key tiles
  c.Hq = 4;
  c.Hkv = 2;
  c.D = 8;
  c.docs = random_documents(c.B, c.Tk, 21);
  auto q = random_tensor(DType::F64, {c.B, c.Tq, c.Hq, c.D}, 22, -2, 2);
  auto k = random_tensor(DType::F64, {c.B, c.Tk, c.Hkv, c.D}, 23, -2, 2);
  auto v = random_tensor(DType::F64, {c.B, c.Tk, c.Hkv, c.D}, 24);
  const auto weights = testing::loss_weights(c.Tq * c.Hq * c.D, 25);
  OwnedTensor dout(DType::F64, {c.B, c.Tq, c.Hq, c.D});
  std::copy(weights.begin(), weights.end(), dout.data<double>());
  const FlashRun run = run_flash(c, q, k, v, dout);
  OwnedTensor out(DType::F64, {c.B, c.Tq, c.Hq, c.D}), lse(DType::F64, {c.B, c.Hq, c.Tq});
  const auto loss = [&] {
    ops::flash_attention_forward(out, lse, q, k, v, c.doc_tensor());
    return testing::weighted_sum(out, weights);
  };
  EXPECT_LT(gradient_check(q, to_vector(run.dq), loss, 1e-5, 150), 1e-7);
  EXPECT_LT(gradient_check(k, to_vector(run.dk), loss, 1e-5, 150), 1e-7);
  EXPECT_LT(gradient_check(v, to_vector(run.dv), loss, 1e-5, 150), 1e-7);
}

TEST(FlashAttention, BackwardIsDeterministicAcrossThreadCounts) {
  Case c;
  c.B = 1;
  c.Tq = c.Tk = 200;
  c.Hq = 4;
  c.Hkv = 1;
  c.D = 64;
  c.docs = random_documents(c.B, c.Tk, 31);
  auto q = random_tensor(DType::F32, {c.B, c.Tq, c.Hq, c.D}, 32);
  auto k = random_tensor(DType::F32, {c.B, c.Tk, c.Hkv, c.D}, 33);
  auto v = random_tensor(DType::F32, {c.B, c.Tk, c.Hkv, c.D}, 34);
  auto dout = random_tensor(DType::F32, {c.B, c.Tq, c.Hq, c.D}, 35);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const FlashRun serial = run_flash(c, q, k, v, dout);
  omp_set_num_threads(std::max(2, threads));
  const FlashRun parallel = run_flash(c, q, k, v, dout);
  omp_set_num_threads(threads);
  EXPECT_EQ(to_vector(serial.dq), to_vector(parallel.dq));
  EXPECT_EQ(to_vector(serial.dk), to_vector(parallel.dk));
  EXPECT_EQ(to_vector(serial.dv), to_vector(parallel.dv));
}

TEST(FlashAttention, StridedViewsInsideFusedQkvBuffer) {
  const int B = 2, T = 40, Hq = 4, Hkv = 2, D = 16, width = (Hq + 2 * Hkv) * D;
  auto qkv = random_tensor(DType::F64, {B, T, width}, 41);
  const Tensor heads4 = qkv.tensor().reshape({B, T, Hq + 2 * Hkv, D});
  const Tensor q = heads4.narrow(2, 0, Hq), k = heads4.narrow(2, Hq, Hkv),
               v = heads4.narrow(2, Hq + Hkv, Hkv);
  Case c;
  c.B = B;
  c.Tq = c.Tk = T;
  c.Hq = Hq;
  c.Hkv = Hkv;
  c.D = D;
  auto dout = random_tensor(DType::F64, {B, T, Hq, D}, 42);
  const FlashRun strided = run_flash(c, q, k, v, dout);
  const FlashRun dense =
      run_flash(c, testing::converted(q, DType::F64), testing::converted(k, DType::F64),
                testing::converted(v, DType::F64), dout);
  EXPECT_EQ(to_vector(strided.out), to_vector(dense.out));
  EXPECT_EQ(to_vector(strided.dk), to_vector(dense.dk));
  // Gradients written straight into a fused dqkv buffer land in the right columns.
  OwnedTensor dqkv(DType::F64, {B, T, width});
  const Tensor d4 = dqkv.tensor().reshape({B, T, Hq + 2 * Hkv, D});
  ops::flash_attention_backward(d4.narrow(2, 0, Hq), d4.narrow(2, Hq, Hkv),
                                d4.narrow(2, Hq + Hkv, Hkv), dout, q, k, v, strided.out,
                                strided.lse);
  EXPECT_EQ(to_vector(d4.narrow(2, 0, Hq)), to_vector(dense.dq));
  EXPECT_EQ(to_vector(d4.narrow(2, Hq + Hkv, Hkv)), to_vector(dense.dv));
}

TEST(FlashAttention, RejectsBadGqaAndShapes) {
  OwnedTensor q(DType::F32, {1, 4, 3, 8}), k(DType::F32, {1, 4, 2, 8}), v(DType::F32, {1, 4, 2, 8});
  OwnedTensor out(DType::F32, {1, 4, 3, 8}), lse(DType::F32, {1, 3, 4});
  EXPECT_THROW(ops::flash_attention_forward(out, lse, q, k, v), Error);
  OwnedTensor k1(DType::F32, {1, 4, 1, 8}), v1(DType::F32, {1, 4, 1, 8});
  OwnedTensor bad_lse(DType::F32, {1, 4, 3});
  EXPECT_THROW(ops::flash_attention_forward(out, bad_lse, q, k1, v1), Error);
  EXPECT_NO_THROW(ops::flash_attention_forward(out, lse, q, k1, v1));
}

}  // namespace
}  // namespace kiln
