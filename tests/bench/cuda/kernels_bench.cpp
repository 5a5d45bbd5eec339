// The GEMMs' TFLOP/s (cuBLASLt at a GPT-2 small block's shapes) and the achieved memory
// bandwidth of kiln's memory-bound CUDA kernels (every op the model calls besides the GEMMs and
// attention), each through kiln::ops on bf16 device tensors of a GPT-2 small training step's
// shapes, against the device's copy ceiling measured in the same run (a device-to-device copy
// of the largest tensor: bytes read plus bytes written per second). A benchmark, not a test:
// prints one line per GEMM, <gemm> <us per call> <TFLOP/s>, then one per kernel,
//   <kernel> <us per call> <GB/s> <% of copy>
// counting the bytes a kernel must read and write at least (its inputs and outputs once).
// usage: kiln_cuda_kernels_bench [ROWS] [WIDTH] [REPS]   (default 8192 rows of 768, hidden 4x,
// vocabulary 8192, 50M parameters for the optimizer; smaller arguments scale them all down)
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "kernels/ops.hpp"
#include "tests/cuda/device_tensor.hpp"
#include "tests/cuda/kernel_reference.hpp"
#include "tests/bench/cuda/seconds_per_call.hpp"
#include "tests/cuda/test_device.hpp"

namespace {

using kiln::DType;
using kiln::Shape;
using kiln::Tensor;
using kiln::cuda_test::DeviceTensor;
namespace ops = kiln::ops;
using kiln::cuda_bench::seconds_per_call;
constexpr std::chrono::milliseconds kWarmUp{100};

DeviceTensor random_tensor(DType dtype, const Shape& shape, std::uint32_t seed) {
  return DeviceTensor(kiln::cuda_test::random_values(static_cast<std::size_t>(shape.numel()), seed, -1.0f, 1.0f), dtype,
                      shape);
}

// Device i32 ids in [0, bound).
DeviceTensor ids_below(std::int64_t count, std::int64_t bound) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) ids[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i * 7919) % bound);
  DeviceTensor device(DType::I32, {count});
  ops::copy(device, Tensor::of(ids.data(), {count}));
  return device;
}

struct Row {
  std::string kernel;
  double bytes;  // or, for a GEMM, its FLOPs
  std::function<void()> call;
};

}  // namespace

int run(int argc, char** argv) {
  const std::int64_t N = argc > 1 ? std::atoll(argv[1]) : 8192, C = argc > 2 ? std::atoll(argv[2]) : 768;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 50;
  if (N <= 0 || C <= 0 || C % 64 != 0 || reps <= 0) {
    fmt::print(stderr, "usage: kiln_cuda_kernels_bench [ROWS] [WIDTH (a multiple of 64)] [REPS]\n");
    return 2;
  }
  const std::int64_t F = 4 * C, V = std::min<std::int64_t>(8192, 16 * C), P = N * C * 8;
  const std::int64_t heads = C / 64;
  kiln::cuda_test::select_the_test_device();
  const double n = static_cast<double>(N), c = static_cast<double>(C), f = static_cast<double>(F),
               v = static_cast<double>(V), p = static_cast<double>(P);

  const DeviceTensor x = random_tensor(DType::BF16, {N, C}, 1), y(DType::BF16, {N, C}), dy = random_tensor(DType::BF16, {N, C}, 2);
  const DeviceTensor x32 = random_tensor(DType::F32, {N, C}, 3);
  const DeviceTensor w = random_tensor(DType::BF16, {C}, 4), b = random_tensor(DType::BF16, {C}, 5);
  const DeviceTensor dw(DType::F32, {C}), db(DType::F32, {C}), mean(DType::F32, {N}), rstd(DType::F32, {N});
  const DeviceTensor hidden = random_tensor(DType::BF16, {N, F}, 6), hidden_out(DType::BF16, {N, F});
  const DeviceTensor gate_up = random_tensor(DType::BF16, {N, 2 * F}, 7), dgate_up(DType::BF16, {N, 2 * F});
  const DeviceTensor qkv = random_tensor(DType::BF16, {N, 3 * C}, 8);
  const DeviceTensor positions = ids_below(N, 1024), tokens = ids_below(N, V);
  const DeviceTensor table = random_tensor(DType::BF16, {V, C}, 9), dtable(DType::F32, {V, C});
  const DeviceTensor logits = random_tensor(DType::BF16, {N, V}, 10), losses(DType::F32, {N}), lse(DType::F32, {N});
  const DeviceTensor loss_sum(DType::F64, {2});
  const DeviceTensor masters = random_tensor(DType::F32, {P}, 11), grads = random_tensor(DType::F32, {P}, 12);
  const DeviceTensor m(DType::F32, {P}), second(DType::F32, {P}), working(DType::BF16, {P}), total(DType::F64, {1});
  // The q heads of the fused qkv rows, as the model rotates them: [1, N, heads, 64], rows 3C apart.
  const Tensor q(qkv.tensor.ptr, DType::BF16, Shape{1, N, heads, 64}, Shape{N * 3 * C, 3 * C, 64, 1}, kiln::Device::Cuda);
  ops::RopeConfig rope;
  const std::vector<ops::AdamWSegment> segments = {{0, 0, P, true}};
  ops::AdamWStep step;
  step.lr = 1e-4;
  step.step = 1;

  const std::vector<Row> rows = {
      {"copy (the ceiling)", 2 * 2 * n * f, [&] { ops::copy(hidden_out, hidden); }},
      {"cast f32 -> bf16", n * c * (4 + 2), [&] { ops::copy(y, x32); }},
      {"residual add", 3 * 2 * n * c, [&] { ops::add(y, x, dy); }},
      {"add_to", 3 * 2 * n * c, [&] { ops::add_to(y, x); }},
      {"gelu forward", 2 * 2 * n * f, [&] { ops::gelu_forward(hidden_out, hidden); }},
      {"gelu backward", 3 * 2 * n * f, [&] { ops::gelu_backward(hidden_out, hidden, hidden); }},
      {"swiglu forward", 3 * 2 * n * f,
       [&] { ops::swiglu_forward(hidden_out, gate_up.tensor.narrow(1, 0, F), gate_up.tensor.narrow(1, F, F)); }},
      {"swiglu backward", 5 * 2 * n * f,
       [&] {
         ops::swiglu_backward(dgate_up.tensor.narrow(1, 0, F), dgate_up.tensor.narrow(1, F, F), hidden,
                              gate_up.tensor.narrow(1, 0, F), gate_up.tensor.narrow(1, F, F));
       }},
      {"layernorm forward", 4 * n * c + 8 * n, [&] { ops::layernorm_forward(y, mean, rstd, x, w, b); }},
      {"layernorm backward", 6 * n * c + 8 * n, [&] { ops::layernorm_backward(y, dw, db, dy, x, w, mean, rstd); }},
      {"rmsnorm forward", 4 * n * c + 4 * n, [&] { ops::rmsnorm_forward(y, rstd, x, w); }},
      {"rmsnorm backward", 6 * n * c + 4 * n, [&] { ops::rmsnorm_backward(y, dw, dy, x, w, rstd); }},
      {"rope forward (q)", 2 * 2 * n * c + 4 * n, [&] { ops::rope_forward(q, q, positions.tensor.reshape({1, N}), rope); }},
      {"embedding forward", 4 * n * c + 4 * n, [&] { ops::embedding_forward(y, tokens, table); }},
      {"embedding backward", 2 * n * c + 4 * n + 8 * v * c, [&] { ops::embedding_backward(dtable, dy, tokens); }},
      {"cross-entropy forward", 2 * n * v + 8 * n,
       [&] { ops::cross_entropy_forward(losses, lse, loss_sum, logits, tokens, Tensor{}, V); }},
      {"cross-entropy backward", 2 * 2 * n * v + 8 * n,
       [&] { ops::cross_entropy_backward(logits, logits, tokens, lse, Tensor{}, V, 1.0 / n); }},
      {"adamw (bf16 copy)", 30 * p, [&] { ops::adamw_step_segments(masters, grads, m, second, segments, step, working); }},
      {"gradient sum of squares", 4 * p, [&] { ops::sum_of_squares(total, grads); }},
  };
  // The GEMMs of a GPT-2 block and its head, forward, and the MLP's first one backward.
  const auto weight = [&](std::int64_t out, std::int64_t in, std::uint32_t seed) {
    return random_tensor(DType::BF16, {out, in}, seed);
  };
  const DeviceTensor w_qkv = weight(3 * C, C, 20), w_out = weight(C, C, 21), w_fc = weight(F, C, 22),
                     w_proj = weight(C, F, 23), w_head = weight(V, C, 24), dw_fc(DType::F32, {F, C});
  const DeviceTensor qkv_out(DType::BF16, {N, 3 * C}), head_out(DType::BF16, {N, V});
  const std::vector<Row> gemms = {
      {"qkv   x W^T", 2 * n * c * 3 * c, [&] { ops::linear_forward(qkv_out, x, w_qkv); }},
      {"out   x W^T", 2 * n * c * c, [&] { ops::linear_forward(y, x, w_out); }},
      {"fc    x W^T", 2 * n * c * f, [&] { ops::linear_forward(hidden_out, x, w_fc); }},
      {"proj  x W^T", 2 * n * f * c, [&] { ops::linear_forward(y, hidden, w_proj); }},
      {"head  x W^T", 2 * n * c * v, [&] { ops::linear_forward(head_out, x, w_head); }},
      {"fc backward (dx, dW)", 4 * n * c * f, [&] { ops::linear_backward(y, dw_fc, Tensor{}, hidden, x, w_fc); }},
  };
  fmt::print("GEMMs through cuBLASLt (bf16 in, f32 accumulate), {} rows:\n", N);
  fmt::print("{:<26} {:>10} {:>9}\n", "gemm", "us/call", "TFLOP/s");
  for (const Row& row : gemms) {
    const double seconds = seconds_per_call(reps, row.call, kWarmUp);
    fmt::print("{:<26} {:>10.1f} {:>9.0f}\n", row.kernel, seconds * 1e6, row.bytes / seconds / 1e12);
  }

  fmt::print("CUDA kernels, bf16, {} rows x {} (hidden {}, vocabulary {}, {} parameters), {} calls each:\n", N, C, F, V,
             P, reps);
  fmt::print("{:<26} {:>10} {:>9} {:>9}\n", "kernel", "us/call", "GB/s", "of copy");
  double ceiling = 0.0;
  for (const Row& row : rows) {
    const double seconds = seconds_per_call(reps, row.call, kWarmUp);
    const double rate = row.bytes / seconds;
    if (ceiling == 0.0) ceiling = rate;
    fmt::print("{:<26} {:>10.1f} {:>9.0f} {:>8.0f}%\n", row.kernel, seconds * 1e6, rate / 1e9, 100.0 * rate / ceiling);
  }
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    fmt::print(stderr, "kiln_cuda_kernels_bench: {}\n", error.what());
    return 1;
  }
}
