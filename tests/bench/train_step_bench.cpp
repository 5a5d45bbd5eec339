// Benchmark (not a test): one training step (forward, backward, AdamW) of a model shape on
// the CPU, timed over a few steps after a warm-up. scripts/bench_train_cpu.sh runs it beside
// the same step in PyTorch and prints the comparison.
//
//   kiln_train_step_bench FAMILY D_MODEL LAYERS HEADS KV_HEADS D_FF VOCAB SEQ BATCH STEPS [PRECISION]
// PRECISION is fp32 (default) or bf16 (bf16 weights and activations, fp32 masters in AdamW).
// prints one line: "kiln <tokens/s> <GFLOP/s> <seconds/step> <peak GFLOP/s> <parameters>".
#include "kernels/cpu/blas_kernels.hpp"
#include <fmt/format.h>
#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "trainer/core/random.hpp"
#include "trainer/metrics/model_flops.hpp"
#include "trainer/model/transformer.hpp"
#include "trainer/optim/adamw.hpp"

namespace {

kiln::model::ModelConfig config_from(char** argv) {
  const std::string family = argv[1];
  kiln::model::ModelConfig config = family == "llama" ? kiln::model::llama_config() : kiln::model::gpt2_config();
  config.d_model = std::atoll(argv[2]);
  config.n_layers = std::atoll(argv[3]);
  config.n_heads = std::atoll(argv[4]);
  config.n_kv_heads = std::atoll(argv[5]);
  config.d_ff = std::atoll(argv[6]);
  config.vocab_size = std::atoll(argv[7]);
  config.max_seq_len = std::atoll(argv[8]);
  if (family == "llama") config.tie_embeddings = false;
  return config.resolved();
}

}  // namespace

int main(int argc, char** argv) {
  kiln::kernels::select_blas_kernels(argv);
  const std::string precision = argc == 12 ? argv[11] : "fp32";
  if ((argc != 11 && argc != 12) || (precision != "fp32" && precision != "bf16")) {
    fmt::print(stderr, "usage: {} FAMILY D_MODEL LAYERS HEADS KV_HEADS D_FF VOCAB SEQ BATCH STEPS [fp32|bf16]\n", argv[0]);
    return 2;
  }
  const auto config = config_from(argv);
  const std::int64_t seq = std::atoll(argv[8]), batch = std::atoll(argv[9]);
  const int steps = std::atoi(argv[10]);

  kiln::model::Transformer model(config, precision == "bf16" ? kiln::DType::BF16 : kiln::DType::F32);
  model.init_weights(1);
  kiln::optim::AdamW optimizer(model.parameters(), {});
  optimizer.masters_from_working_copy(model.parameters());
  kiln::Rng rng(5);
  std::vector<std::uint32_t> tokens(static_cast<std::size_t>(batch * seq)), targets(tokens.size());
  for (auto& id : tokens) id = static_cast<std::uint32_t>(rng.below(static_cast<std::uint64_t>(config.vocab_size)));
  for (auto& id : targets) id = static_cast<std::uint32_t>(rng.below(static_cast<std::uint64_t>(config.vocab_size)));
  kiln::model::Batch inputs;
  inputs.tokens = kiln::Tensor::of(tokens.data(), {batch, seq});
  inputs.targets = kiln::Tensor::of(targets.data(), {batch, seq});
  const kiln::model::BatchInputs checked(inputs, kiln::model::BatchLimits::of(model.config()), "bench");

  auto step = [&] {
    model.zero_grads();
    model.forward(checked.batch());
    model.backward(1.0 / static_cast<double>(batch * seq));
    optimizer.step(model.parameters(), model.parameters().grads(), 1e-4, 1.0);
  };
  step();  // warm-up: plans the arena, touches every page
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / steps;
  const double tokens_per_second = static_cast<double>(batch * seq) / seconds;
  const double flops = kiln::model::flops_per_token(config, seq) * tokens_per_second;
  const double peak = kiln::metrics::estimate_cpu_peak_flops(omp_get_max_threads());
  fmt::print("kiln {:.1f} {:.2f} {:.4f} {:.1f} {}\n", tokens_per_second, flops / 1e9, seconds, peak / 1e9,
             kiln::model::parameter_count(config));
  return 0;
}
