#include "trainer/plan/communication_volume.hpp"

#include "trainer/plan/cp_and_recompute.hpp"

namespace kiln::plan {

namespace {

// The cross-entropy's row maxima [N] and (exp sum, target logit) [2, N] are f32 statistics.
constexpr double kStatisticsBytes = 4.0;

struct StageShape {
  bool first = false, last = false;
  double blocks = 0;
  double activation = 0;  // bytes of [B, T/cp, C]
  double rows = 0;        // B T/cp
};

double tensor_parallel_bytes(const PlanLayout& layout, const StageShape& s) {
  const int n = layout.tp;
  const double statistics = s.last ? ring_bytes(n, 3 * s.rows * kStatisticsBytes, 2) : 0.0;
  if (!layout.sequence_parallel) {
    const double all_reduces = 4 * s.blocks + (s.first ? 1 : 0) + (s.last ? 1 : 0);
    return ring_bytes(n, s.activation, 2) * all_reduces + statistics;
  }
  const double gathers_and_scatters = 10 * s.blocks + (s.first ? 2 : 0) + (s.last ? 3 : 0);
  return ring_bytes(n, s.activation, 1) * gathers_and_scatters + statistics;
}

double pipeline_bytes(const PlanLayout& layout, const StageShape& s) {
  if (layout.pp == 1) return 0.0;
  const double link = s.activation / (layout.sequence_parallel ? layout.tp : 1);
  return link * ((s.last ? 0 : 1) + (s.first ? 0 : 1));
}

double data_parallel_bytes(const PlanLayout& layout, const RankBuffers& rank, DType values, DType gradients) {
  const int n = layout.gradient_replicas();
  const auto elements = static_cast<double>(rank.parameters);
  if (layout.zero == 0) return ring_bytes(n, elements * static_cast<double>(dtype_size(gradients)), 2);
  return ring_bytes(n, elements * static_cast<double>(dtype_size(gradients)), 1) +
         ring_bytes(n, elements * static_cast<double>(dtype_size(values)), 1);
}

}  // namespace

double ring_bytes(int ranks, double bytes, double factor) {
  return ranks > 1 ? factor * bytes * (ranks - 1) / ranks : 0.0;
}

GroupBytes StageTraffic::step_total(int micro_batches) const {
  const double m = micro_batches;
  return {per_micro_batch.tp * m + per_step.tp, per_micro_batch.cp * m + per_step.cp,
          per_micro_batch.pp * m + per_step.pp, per_micro_batch.dp * m + per_step.dp,
          per_micro_batch.embedding * m + per_step.embedding};
}

StageTraffic stage_traffic(const PlanLayout& layout, const RankBuffers& rank, int stage, std::int64_t seq_len,
                           DType values, DType gradients) {
  const auto value_size = dtype_size(values);
  StageShape s;
  s.first = stage == 0;
  s.last = stage == layout.pp - 1;
  s.blocks = static_cast<double>(rank.dims.layers);
  s.rows = static_cast<double>(layout.micro_batch_size * tokens_per_rank(seq_len, layout.cp));
  s.activation = s.rows * static_cast<double>(rank.dims.d_model * static_cast<std::int64_t>(value_size));
  StageTraffic traffic;
  traffic.per_micro_batch.tp = tensor_parallel_bytes(layout, s);
  traffic.per_micro_batch.cp =
      context_ring_bytes_per_micro_batch(rank.dims, layout.micro_batch_size, seq_len, layout.cp, value_size);
  traffic.per_micro_batch.pp = pipeline_bytes(layout, s);
  const auto gradient_size = static_cast<double>(dtype_size(gradients));
  traffic.per_step.tp = ring_bytes(layout.tp, static_cast<double>(rank.chunk_gradients_owned) * gradient_size, 2);
  traffic.per_step.dp = data_parallel_bytes(layout, rank, values, gradients);
  traffic.per_step.embedding = ring_bytes(2, static_cast<double>(rank.embedding_copy) * gradient_size, 2);
  return traffic;
}

}  // namespace kiln::plan
