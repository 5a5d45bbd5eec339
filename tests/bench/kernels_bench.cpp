// CPU kernel throughput: one table (nccl-tests style) of time and GFLOP/s or GB/s for the ops
// that dominate a training step. A program, not a test: it prints and never asserts.
//   usage: kiln_kernels_bench [repeats] [f32|bf16]   (OMP_NUM_THREADS sets the thread count)
// bf16 stores activations and weights in bf16 (parameter gradients, masters and moments f32),
// as mixed-precision training does; the rates count the f32 bytes in both cases.
#include "kernels/cpu/blas_kernels.hpp"
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "kernels/tensor.hpp"
#include "trainer/core/random.hpp"

namespace {

using kiln::DType;
using kiln::OwnedTensor;
using kiln::Tensor;

OwnedTensor random_f32(kiln::Shape shape, std::uint64_t seed) {
  OwnedTensor tensor(DType::F32, shape);
  kiln::Rng rng(seed);
  float* data = tensor.data<float>();
  for (std::int64_t i = 0; i < tensor.numel(); ++i)
    data[i] = static_cast<float>(2.0 * rng.uniform() - 1.0);
  return tensor;
}

// The storage dtype of activations and weights (f32 or bf16), set from the command line.
DType storage = DType::F32;

OwnedTensor random_stored(kiln::Shape shape, std::uint64_t seed) {
  if (storage == DType::F32) return random_f32(shape, seed);
  OwnedTensor tensor(storage, shape);
  kiln::ops::copy(tensor, random_f32(shape, seed));
  return tensor;
}

// Best of `repeats` timings after one warm-up, in seconds.
double best_time(int repeats, const std::function<void()>& body) {
  body();
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    body();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    best = std::min(best, elapsed.count());
  }
  return best;
}

void row(const std::string& op, const std::string& shape, double seconds, double work,
         const char* unit) {
  std::printf("%-26s %-34s %10.3f %10.1f %s\n", op.c_str(), shape.c_str(), seconds * 1e3,
              work / seconds * 1e-9, unit);
}

void bench_linear(int repeats) {
  // GPT-2 small MLP up-projection over one micro-batch: [8 x 256, 768] -> 3072.
  const std::int64_t N = 8 * 256, in = 768, out = 3072;
  auto x = random_stored({N, in}, 1), w = random_stored({out, in}, 2), b = random_stored({out}, 3);
  auto dy = random_stored({N, out}, 4);
  OwnedTensor y(storage, {N, out}), dx(storage, {N, in}), dw(DType::F32, {out, in}),
      db(DType::F32, {out});
  const double flops = 2.0 * N * in * out;
  const std::string shape = "x[2048,768] W[3072,768]";
  row("linear fwd", shape, best_time(repeats, [&] { kiln::ops::linear_forward(y, x, w, b); }),
      flops, "GFLOP/s");
  row("linear bwd (dx,dW,db)", shape,
      best_time(repeats, [&] { kiln::ops::linear_backward(dx, dw, db, dy, x, w); }), 2 * flops,
      "GFLOP/s");
}

void bench_attention(int repeats) {
  const std::int64_t B = 4, T = 256, H = 12, D = 64;
  auto q = random_stored({B, T, H, D}, 11), k = random_stored({B, T, H, D}, 12);
  auto v = random_stored({B, T, H, D}, 13), dout = random_stored({B, T, H, D}, 14);
  OwnedTensor out(storage, {B, T, H, D}), lse(DType::F32, {B, H, T});
  OwnedTensor dq(storage, {B, T, H, D}), dk(storage, {B, T, H, D}), dv(storage, {B, T, H, D});
  // Causal: about half of the T x T scores are computed. Forward = 2 matmuls (QK^T, PV);
  // backward = 5 (dV, dP, dK, dQ, and the recomputed QK^T), as flash-attention counts them.
  const double pairs = static_cast<double>(B * H) * T * (T + 1) / 2.0;
  const double forward_flops = 4.0 * pairs * D, backward_flops = 10.0 * pairs * D;
  const std::string shape = "B4 T256 H12 Dh64 causal";
  row("flash attention fwd", shape,
      best_time(repeats, [&] { kiln::ops::flash_attention_forward(out, lse, q, k, v); }),
      forward_flops, "GFLOP/s");
  row("flash attention bwd", shape,
      best_time(repeats,
                [&] { kiln::ops::flash_attention_backward(dq, dk, dv, dout, q, k, v, out, lse); }),
      backward_flops, "GFLOP/s");
}

void bench_cross_entropy(int repeats) {
  const std::int64_t N = 1024, V = 50304, valid = 50257;
  auto logits = random_stored({N, V}, 21);
  std::vector<std::uint32_t> targets(N);
  for (std::int64_t i = 0; i < N; ++i) targets[i] = static_cast<std::uint32_t>(i * 37 % valid);
  OwnedTensor lse(DType::F32, {N}), dlogits(storage, {N, V});
  const Tensor target_view = Tensor::of(targets.data(), {N});
  kiln::OwnedTensor loss_sum(kiln::DType::F64, {2});
  const double bytes = static_cast<double>(N * V) * sizeof(float);
  const std::string shape = "logits[1024,50304] valid 50257";
  row("cross-entropy fwd", shape,
      best_time(repeats,
                [&] {
                  kiln::ops::cross_entropy_forward(Tensor{}, lse, loss_sum, logits, target_view, Tensor{},
                                                   valid);
                }),
      bytes, "GB/s (logits read)");
  row("cross-entropy bwd", shape,
      best_time(repeats,
                [&] {
                  kiln::ops::cross_entropy_backward(dlogits, logits, target_view, lse, Tensor{},
                                                    valid, 1.0 / N);
                }),
      2 * bytes, "GB/s (read+write)");
}

void bench_norm_and_optimizer(int repeats) {
  const std::int64_t N = 8 * 256, C = 768;
  auto x = random_stored({N, C}, 31), w = random_stored({C}, 32), b = random_stored({C}, 33);
  auto dy = random_stored({N, C}, 34);
  OwnedTensor y(storage, {N, C}), mean(DType::F32, {N}), rstd(DType::F32, {N});
  OwnedTensor dx(storage, {N, C}), dw(DType::F32, {C}), db(DType::F32, {C});
  const double bytes = static_cast<double>(N * C) * sizeof(float);
  row("layernorm fwd", "x[2048,768]",
      best_time(repeats, [&] { kiln::ops::layernorm_forward(y, mean, rstd, x, w, b); }), 2 * bytes,
      "GB/s");
  row("layernorm bwd", "x[2048,768]",
      best_time(repeats, [&] { kiln::ops::layernorm_backward(dx, dw, db, dy, x, w, mean, rstd); }),
      3 * bytes, "GB/s");
  OwnedTensor sum(storage, {N, C});
  row("residual add", "x[2048,768]", best_time(repeats, [&] { kiln::ops::add(sum, x, dy); }), 3 * bytes,
      "GB/s");
  row("gelu fwd", "x[2048,768]", best_time(repeats, [&] { kiln::ops::gelu_forward(y, x); }), 2 * bytes, "GB/s");
  const std::int64_t P = 124'000'000 / 8;  // an eighth of GPT-2 small's parameters
  auto p = random_f32({P}, 41), g = random_f32({P}, 42);
  // bf16 storage: f32 masters and moments, plus the bf16 working copy refreshed in the pass.
  OwnedTensor working = storage == DType::BF16 ? OwnedTensor(DType::BF16, {P}) : OwnedTensor();
  OwnedTensor m(DType::F32, {P}), v(DType::F32, {P});
  kiln::ops::AdamWStep step{.lr = 1e-4, .weight_decay = 0.1};
  row("adamw step", "15.5M params",
      best_time(repeats,
                [&] {
                  kiln::ops::adamw_step(p, g, m, v, step, true, working);
                  ++step.step;
                }),
      static_cast<double>(P) * sizeof(float) * 7, "GB/s (4 read, 3 write)");
}

}  // namespace

int main(int argc, char** argv) {
  kiln::kernels::select_blas_kernels(argv);
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  if (argc > 2 && std::string(argv[2]) == "bf16") storage = DType::BF16;
  std::printf("kiln CPU kernels, %s storage, %d OpenMP threads, best of %d\n",
              std::string(kiln::dtype_name(storage)).c_str(), omp_get_max_threads(), repeats);
  std::printf("%-26s %-34s %10s %10s\n", "op", "shape", "ms", "rate");
  bench_linear(repeats);
  bench_attention(repeats);
  bench_cross_entropy(repeats);
  bench_norm_and_optimizer(repeats);
  return 0;
}
