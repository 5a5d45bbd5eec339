#include "trainer/plan/layout_plan.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include "trainer/core/error.hpp"
#include "trainer/model/model_config.hpp"
#include "trainer/plan/cp_and_recompute.hpp"
#include "trainer/plan/rank_memory.hpp"

namespace kiln::plan {

namespace {

RankPlacement placement_of(const PlanLayout& layout, int stage, std::int64_t seq_len) {
  RankPlacement at;
  at.tp = layout.tp;
  at.pp = layout.pp;
  at.stage = stage;
  at.gradient_replicas = layout.gradient_replicas();
  at.zero = layout.zero == 1;
  at.sequence_parallel = layout.sequence_parallel;
  at.micro_batch_size = layout.micro_batch_size;
  at.recompute = model::recompute_of(layout.recompute);
  at.tokens = tokens_per_rank(seq_len, layout.cp);
  at.micro_batches = layout.micro_batches;
  return at;
}

// What the trainer lacks, on top of what its buffers take.
void add_cp_and_recompute(metrics::MemoryPeaks& bytes, const RankBuffers& rank, const PlanLayout& layout,
                          std::int64_t seq_len, DType values) {
  auto& communication = bytes.categories[static_cast<std::size_t>(memory::MemoryCategory::communication)];
  communication +=
      context_ring_buffer_bytes(rank.dims, layout.micro_batch_size, seq_len, layout.cp, dtype_size(values));
  bytes.total = 0;
  for (const std::uint64_t category : bytes.categories) bytes.total += category;
}

StageEstimate estimate_stage(const model::ModelConfig& config, const PlanLayout& layout, int stage,
                             std::int64_t seq_len, DType values) {
  const RankBuffers rank = build_rank_buffers(config, values, placement_of(layout, stage, seq_len));
  StageEstimate estimate;
  estimate.stage = stage;
  estimate.blocks = rank.dims.layers;
  estimate.pipeline_slots = rank.pipeline_slots;
  estimate.parameters = rank.parameters;
  estimate.memory = rank.bytes;
  add_cp_and_recompute(estimate.memory, rank, layout, seq_len, values);
  estimate.traffic = stage_traffic(layout, rank, stage, seq_len, values, rank.gradient_dtype);
  estimate.traffic_per_step = estimate.traffic.step_total(layout.micro_batches);
  return estimate;
}

GroupBytes most_sent(const std::vector<StageEstimate>& stages) {
  GroupBytes most;
  for (const StageEstimate& stage : stages) {
    const GroupBytes& sent = stage.traffic_per_step;
    most = {std::max(most.tp, sent.tp), std::max(most.cp, sent.cp), std::max(most.pp, sent.pp),
            std::max(most.dp, sent.dp), std::max(most.embedding, sent.embedding)};
  }
  return most;
}

std::vector<StageWork> work_of(const std::vector<StageEstimate>& stages, int pp) {
  std::vector<StageWork> work;
  for (const StageEstimate& stage : stages)
    work.push_back({static_cast<int>(stage.blocks), stage.stage == pp - 1, stage.traffic});
  return work;
}

// A step time to 9 significant digits: the micro-batch sizes of one layout without a pipeline
// take the same time here, up to the rounding of their sums.
double comparable_time(double seconds) {
  if (seconds <= 0) return seconds;
  const double scale = std::pow(10.0, 9 - std::ceil(std::log10(seconds)));
  return std::round(seconds * scale) / scale;
}

// Layouts that fit first; each part by step time; at equal times the larger micro-batch first
// (its fewer, larger GEMMs run nearer the peak than one efficiency for every shape says), then
// the smaller memory.
bool runs_before(const LayoutEstimate& a, const LayoutEstimate& b) {
  if (a.fits() != b.fits()) return a.fits();
  const double time_a = comparable_time(a.time.step_s), time_b = comparable_time(b.time.step_s);
  if (time_a != time_b) return time_a < time_b;
  if (a.layout.micro_batch_size != b.layout.micro_batch_size)
    return a.layout.micro_batch_size > b.layout.micro_batch_size;
  return a.memory.total < b.memory.total;
}

}  // namespace

bool trains_in_bf16(const config::Recipe& recipe, const PlanLayout& layout) {
  switch (recipe.train.precision) {
    case config::Precision::bf16: return true;
    case config::Precision::fp32: return false;
    case config::Precision::auto_select:
      return recipe.train.device != config::Device::cpu && layout.cp == 1;
  }
  return false;
}

LayoutEstimate estimate_layout(const config::Recipe& recipe, const PlanLayout& layout,
                               const PlanAssumptions& assumptions) {
  LayoutEstimate estimate;
  estimate.layout = layout;
  estimate.bf16 = trains_in_bf16(recipe, layout);
  const DType values = estimate.bf16 ? DType::BF16 : DType::F32;
  const model::ModelConfig config = model::from_recipe(recipe.model, layout.tp);
  const std::int64_t seq_len = recipe.train.seq_len;
  for (int stage = 0; stage < layout.pp; ++stage) {
    estimate.stages.push_back(estimate_stage(config, layout, stage, seq_len, values));
    if (estimate.stages.back().memory.total > estimate.memory.total) estimate.memory = estimate.stages.back().memory;
  }
  estimate.traffic = most_sent(estimate.stages);
  estimate.time =
      estimate_step_time(layout, config, seq_len, estimate.bf16, work_of(estimate.stages, layout.pp), assumptions);
  estimate.tokens_per_s = static_cast<double>(recipe.train.tokens_per_step()) / estimate.time.step_s;
  estimate.gpu_memory_bytes = static_cast<std::uint64_t>(assumptions.gpu_memory_gib * 1024.0 * 1024.0 * 1024.0);
  return estimate;
}

Plan plan_layouts(const LayoutChecker& checker, const config::Recipe& base, const PlanSpace& space,
                  const PlanAssumptions& assumptions) {
  Plan plan;
  for (const PlanLayout& candidate : candidate_layouts(base, space)) {
    std::optional<LayoutChecker::Checked> checked;
    try {
      checked = checker.check(candidate);
    } catch (const Error& refusal) {
      if (plan.refused++ == 0) plan.first_refusal = refusal.what();
      continue;
    }
    plan.layouts.push_back(estimate_layout(checked->recipe, checked->layout, assumptions));
  }
  std::stable_sort(plan.layouts.begin(), plan.layouts.end(), runs_before);
  return plan;
}

}  // namespace kiln::plan
