#include "trainer/plan/cp_and_recompute.hpp"


namespace kiln::plan {

std::int64_t tokens_per_rank(std::int64_t seq_len, int cp) { return seq_len / cp; }

std::uint64_t context_ring_buffer_bytes(const model::StageDims& dims, std::int64_t micro_batch_size,
                                        std::int64_t seq_len, int cp, std::size_t value_size) {
  if (cp == 1) return 0;
  const auto aligned = [&](std::int64_t elements) {
    return (static_cast<std::uint64_t>(elements) * value_size + 63) / 64 * 64;
  };
  const std::int64_t tokens = tokens_per_rank(seq_len, cp), chunk = tokens / 2, B = micro_batch_size;
  const std::uint64_t blocks = 4 * aligned(2 * B * tokens * dims.kv_dim());  // K|V and dK|dV, held and arriving
  const std::uint64_t parts = 2 * aligned(chunk * dims.q_dim()) + 2 * aligned(chunk * dims.kv_dim()) +
                              2 * aligned(dims.q_heads * chunk);  // one chunk's partial results
  return blocks + parts + aligned(B * tokens * dims.q_dim());  // and the dq sum
}

double context_ring_bytes_per_micro_batch(const model::StageDims& dims, std::int64_t micro_batch_size,
                                          std::int64_t seq_len, int cp, std::size_t value_size) {
  const double kv =
      static_cast<double>(micro_batch_size * seq_len * 2 * dims.kv_dim() * static_cast<std::int64_t>(value_size));
  const double forward = (cp - 1.0) / cp * kv;
  return static_cast<double>(dims.layers) * 3.0 * forward;  // forward, then twice that backward
}

double recompute_flops_per_token(Recompute recompute, double block_training_flops) {
  switch (recompute) {
    case Recompute::none: return 0.0;
    case Recompute::selective: return 0.0;  // norms and an elementwise activation: no GEMM
    case Recompute::full: return block_training_flops / 3.0;
  }
  return 0.0;
}

}  // namespace kiln::plan
