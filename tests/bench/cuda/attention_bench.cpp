// Attention on the GPU: kiln::ops::flash_attention_forward/backward on bf16 device tensors
// (the tensor-core kernels where they apply, kernels/cuda/flash_attention.cu), each block size
// in turn, causal (the default) or full, q/k/v as separate [B, T, H, D] tensors. A benchmark,
// not a test: prints one line per block size,
//   attention B T H/KV D causal|full warps W: fwd <ms> <TFLOP/s> bwd <ms> <TFLOP/s>
// and, where kiln was built for sm_90a, one for the wgmma kernels (flash_attention_wgmma*.cu)
// with the largest difference of out, dq, dk, dv from the mma.sync kernels' on the same inputs,
//   attention-wgmma B T H/KV D causal|full warps W: fwd <ms> <TFLOP/s> bwd <ms> <TFLOP/s> max-diff <x>
// counting 4 B H T^2 D FLOPs forward (halved when causal: half the score matrix) and 2.5 times
// that backward, the convention FlashAttention's papers use. scripts/bench_attention_torch.py
// times PyTorch's scaled_dot_product_attention on the same shapes.
// usage: kiln_cuda_attention_bench B T H KV D [REPS] [causal|full]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <functional>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/cuda/flash_attention.hpp"
#include "kernels/ops.hpp"
#include "tests/cuda/device_tensor.hpp"
#include "tests/cuda/kernel_reference.hpp"
#include "tests/bench/cuda/seconds_per_call.hpp"
#include "tests/cuda/test_device.hpp"

namespace {

using kiln::DType;
using kiln::Shape;
using kiln::cuda_test::DeviceTensor;
using kiln::cuda_bench::seconds_per_call;
constexpr std::chrono::milliseconds kWarmUp{500};

}  // namespace

int run(int argc, char** argv) {
  if (argc < 6) {
    fmt::print(stderr, "usage: kiln_cuda_attention_bench B T H KV D [REPS] [causal|full]\n");
    return 2;
  }
  const std::string mask = argc > 7 ? argv[7] : "causal";
  if (mask != "causal" && mask != "full") {
    fmt::print(stderr, "kiln_cuda_attention_bench: the mask is causal or full, not '{}'\n", mask);
    return 2;
  }
  const bool causal = mask == "causal";
  const std::int64_t B = std::atoll(argv[1]), T = std::atoll(argv[2]), H = std::atoll(argv[3]),
                     KV = std::atoll(argv[4]), D = std::atoll(argv[5]);
  const int reps = argc > 6 ? std::atoi(argv[6]) : 20;
  kiln::cuda_test::select_the_test_device();
  const Shape q_shape{B, T, H, D}, kv_shape{B, T, KV, D}, lse_shape{B, H, T};
  const auto values = [](const Shape& shape, std::uint32_t seed) {
    return kiln::cuda_test::random_values(static_cast<std::size_t>(shape.numel()), seed, -1.0f, 1.0f);
  };
  const DeviceTensor q(values(q_shape, 1), DType::BF16, q_shape), k(values(kv_shape, 2), DType::BF16, kv_shape),
      v(values(kv_shape, 3), DType::BF16, kv_shape), dout(values(q_shape, 4), DType::BF16, q_shape);
  const DeviceTensor out(DType::BF16, q_shape), lse(DType::F32, lse_shape), dq(DType::BF16, q_shape),
      dk(DType::BF16, kv_shape), dv(DType::BF16, kv_shape);
  const kiln::ops::AttentionOptions options{.causal = causal, .softmax_scale = 0.0};
  const auto score_elements = static_cast<double>(B * H * T * T);
  const double forward_flops = 4.0 * score_elements * static_cast<double>(D) / (causal ? 2.0 : 1.0);
  const double backward_flops = 2.5 * forward_flops;
  // Seconds per forward and per backward call of the kernels selected now, and the line that
  // reports them (`label` warps W: fwd <ms> <TFLOP/s> bwd <ms> <TFLOP/s>).
  const auto timed_line = [&](const char* label, int warps) {
    const double forward = seconds_per_call(
        reps, [&] { kiln::ops::flash_attention_forward(out, lse, q, k, v, kiln::Tensor{}, options); }, kWarmUp);
    const double backward = seconds_per_call(
        reps,
        [&] { kiln::ops::flash_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, kiln::Tensor{}, options); },
        kWarmUp);
    return fmt::format("{} B{} T{} H{}/{} D{} {} warps {}: fwd {:.3f} ms {:.0f} TFLOP/s bwd {:.3f} ms {:.0f} TFLOP/s",
                       label, B, T, H, KV, D, mask, warps, forward * 1e3, forward_flops / forward / 1e12,
                       backward * 1e3, backward_flops / backward / 1e12);
  };
  const auto results = [&] {
    return std::vector<std::vector<float>>{out.download(), dq.download(), dk.download(), dv.download()};
  };
  for (const int warps : {4, 8}) {
    kiln::cuda::set_flash_attention_block_warps(warps);
    fmt::print("{}\n", timed_line("attention", warps));
    if (!kiln::cuda::flash_attention_wgmma_built()) continue;
    const std::vector<std::vector<float>> reference = results();
    kiln::cuda::set_flash_attention_kernels(kiln::cuda::FlashKernels::wgmma);
    const std::string wgmma = timed_line("attention-wgmma", warps);
    const std::vector<std::vector<float>> got = results();
    kiln::cuda::set_flash_attention_kernels(kiln::cuda::FlashKernels::mma_sync);
    double max_diff = 0.0;
    for (std::size_t t = 0; t < got.size(); ++t)
      for (std::size_t i = 0; i < got[t].size(); ++i)
        max_diff = std::max(max_diff, static_cast<double>(std::fabs(got[t][i] - reference[t][i])));
    fmt::print("{} max-diff {:.3g}\n", wgmma, max_diff);
  }
  kiln::cuda::set_flash_attention_block_warps(4);
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    fmt::print(stderr, "kiln_cuda_attention_bench: {}\n", error.what());
    return 1;
  }
}
