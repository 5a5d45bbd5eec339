#include "trainer/metrics/model_flops.hpp"

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>

#include "trainer/core/error.hpp"

namespace kiln::metrics {

namespace {

struct LayerShape {
  std::int64_t d, kv, ff, vocab;
};

LayerShape shape_of(const config::ModelConfig& m) {
  if (m.vocab_size <= 0) fail("model size: model.vocab_size is not resolved yet");
  const std::int64_t d = m.d_model;
  return {d, static_cast<std::int64_t>(m.n_kv_heads) * (d / m.n_heads), m.d_ff, m.vocab_size};
}

// Weights of the matmuls of one block: q, k, v, attention output, then the MLP.
std::int64_t block_matmul_weights(const config::ModelConfig& m, const LayerShape& s) {
  const std::int64_t attention = s.d * s.d * 2 + s.d * s.kv * 2;
  const std::int64_t mlp_matrices = m.family == config::ModelFamily::llama ? 3 : 2;
  return attention + mlp_matrices * s.d * s.ff;
}

std::int64_t block_other_parameters(const config::ModelConfig& m, const LayerShape& s) {
  if (m.family == config::ModelFamily::llama) return 2 * s.d;  // two RMSNorm gains
  const std::int64_t norms = 2 * 2 * s.d;                       // two LayerNorms (gain, bias)
  const std::int64_t biases = s.d + 2 * s.kv + s.d + s.ff + s.d;
  return norms + biases;
}

}  // namespace

std::int64_t parameter_count(const config::ModelConfig& m) {
  const LayerShape s = shape_of(m);
  const bool gpt2 = m.family == config::ModelFamily::gpt2;
  const std::int64_t blocks = m.n_layers * (block_matmul_weights(m, s) + block_other_parameters(m, s));
  const std::int64_t embeddings = s.vocab * s.d + (gpt2 ? std::int64_t{m.max_seq_len} * s.d : 0);
  const std::int64_t final_norm = gpt2 ? 2 * s.d : s.d;
  const std::int64_t head = m.tie_embeddings ? 0 : s.vocab * s.d;
  return embeddings + blocks + final_norm + head;
}

double training_flops_per_token(const config::ModelConfig& m, int seq_len) {
  const LayerShape s = shape_of(m);
  const auto matmul_weights = static_cast<double>(m.n_layers * block_matmul_weights(m, s) + s.vocab * s.d);
  const double attention = 12.0 * m.n_layers * static_cast<double>(s.d) * seq_len;
  return 6.0 * matmul_weights + attention;
}

double model_flops_utilisation(double flops_per_token, double tokens_per_second, double peak_flops) {
  return peak_flops > 0 ? flops_per_token * tokens_per_second / peak_flops : 0.0;
}

double estimate_cpu_peak_flops(int threads) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  double megahertz = 0;
  bool avx2 = false, fma = false, avx512 = false;
  for (std::string line; std::getline(cpuinfo, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string value = line.substr(colon + 1);
    if (line.starts_with("cpu MHz")) {
      megahertz = std::max(megahertz, std::stod(value));
    } else if (line.starts_with("flags")) {
      avx2 = value.find(" avx2") != std::string::npos;
      fma = value.find(" fma") != std::string::npos;
      avx512 = value.find(" avx512f") != std::string::npos;
    }
  }
  if (megahertz <= 0) return 0.0;
  // Two FMA pipes, 2 FLOPs per FMA, 8 (AVX2) or 16 (AVX-512) floats per vector.
  const double per_cycle = avx512 ? 64.0 : (avx2 && fma ? 32.0 : 8.0);
  const unsigned available = std::max(1u, std::thread::hardware_concurrency());
  const unsigned cores = threads > 0 ? std::min<unsigned>(static_cast<unsigned>(threads), available) : available;
  return cores * megahertz * 1e6 * per_cycle;
}

}  // namespace kiln::metrics
