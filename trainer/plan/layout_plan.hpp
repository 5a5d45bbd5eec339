#pragma once
// `kiln plan`'s estimate of one layout (DESIGN.md §6, §10): per rank, the bytes of every memory
// category the training report uses (rank_memory.hpp, with cp and recomputation on top,
// cp_and_recompute.hpp), the bytes sent per step per group (communication_volume.hpp), and the
// step time (step_time.hpp); and every layout of N GPUs that kiln train accepts, estimated
// and ordered.
#include <cstdint>
#include <vector>

#include "trainer/config/recipe.hpp"
#include "trainer/metrics/memory_report.hpp"
#include "trainer/plan/communication_volume.hpp"
#include "trainer/plan/plan_assumptions.hpp"
#include "trainer/plan/plan_layout.hpp"
#include "trainer/plan/step_time.hpp"

namespace kiln::plan {

struct StageEstimate {
  int stage = 0;
  std::int64_t blocks = 0;
  int pipeline_slots = 1;
  std::int64_t parameters = 0;  // elements of the stage's parameter shard
  metrics::MemoryPeaks memory;  // one rank of the stage; total = the sum of the categories
  StageTraffic traffic;         // bytes one rank of the stage sends, per micro-batch and per step
  GroupBytes traffic_per_step;  // the two together over a step
};

struct LayoutEstimate {
  PlanLayout layout;
  bool bf16 = false;                  // train.precision as kiln train would resolve it on GPUs
  std::vector<StageEstimate> stages;  // one per pipeline stage
  metrics::MemoryPeaks memory;        // the stage with the largest total: the job's per-rank peak
  GroupBytes traffic;                 // per group, the most one rank sends per step
  StepTime time;
  double tokens_per_s = 0;
  std::uint64_t gpu_memory_bytes = 0;

  bool fits() const { return memory.total <= gpu_memory_bytes; }
  // How far the peak rank is over the GPU's memory (0 when it fits).
  std::uint64_t over_by_bytes() const { return fits() ? 0 : memory.total - gpu_memory_bytes; }
};

// train.precision as kiln train resolves it (Trainer::State::choose_device): auto is bf16 on
// CUDA where bf16 is wired (tp = pp = 1), fp32 on the CPU; the plan is for GPUs unless the
// recipe says train.device: cpu.
bool trains_in_bf16(const config::Recipe& recipe, const PlanLayout& layout);

// recipe and layout: as LayoutChecker::check gives them (the recipe kiln train would run,
// vocabulary resolved; micro_batches filled in).
LayoutEstimate estimate_layout(const config::Recipe& recipe, const PlanLayout& layout,
                               const PlanAssumptions& assumptions);

struct Plan {
  std::vector<LayoutEstimate> layouts;  // those that fit first, each part by step time
  std::int64_t refused = 0;             // candidates kiln train's checks refuse
  std::string first_refusal;
};

// Every candidate layout that kiln train accepts, estimated and ordered.
Plan plan_layouts(const LayoutChecker& checker, const config::Recipe& base, const PlanSpace& space,
                  const PlanAssumptions& assumptions);

}  // namespace kiln::plan
