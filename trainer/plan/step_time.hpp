#pragma once
// A layout's estimated step time from its FLOPs and its traffic (DESIGN.md §1: the assumptions
// are printed with the estimate, see plan_assumptions.hpp):
//   compute  a rank's share of the model's training FLOPs (model::flops_per_token: 6 N + the
//            attention term, per block and for the head; plus recomputation) / (peak x efficiency)
//   traffic  bytes sent / bandwidth: NVLink when every group of that kind lies inside a node
//            (ranks ordered tp, cp, dp, pp; gpus_per_node per node), InfiniBand otherwise
//   step     1F1B: (micro-batches + pp - 1) x the slowest stage's micro-batch (its compute, tp,
//            cp and pp traffic), then the per-step traffic (dp, embedding, SP's gradient sum);
//            the bubble is the (pp - 1) / micro-batches of that
#include <cstdint>
#include <vector>

#include "trainer/model/model_config.hpp"
#include "trainer/plan/communication_volume.hpp"
#include "trainer/plan/plan_assumptions.hpp"
#include "trainer/plan/plan_layout.hpp"

namespace kiln::plan {

// Which groups talk over NVLink (inside a node) rather than InfiniBand.
struct GroupPlacement {
  bool tp_inside_node = true, cp_inside_node = true, dp_inside_node = true, pp_inside_node = true;
};
GroupPlacement place_groups(const PlanLayout& layout, int gpus_per_node);

// Training FLOPs per token (forward + backward, whole model width) of one block and of the head.
struct ModelFlops {
  double block = 0;
  double head = 0;
};
ModelFlops model_flops(const model::ModelConfig& config, std::int64_t seq_len);

struct StageWork {
  int blocks = 0;
  bool last = false;
  StageTraffic traffic;
};

struct StepTime {
  double compute_s = 0;  // the slowest stage's compute over the step, bubble excluded
  double traffic_s = 0;  // all traffic of the slowest stage, and the per-step traffic
  double bubble_s = 0;   // the pipeline's fill and drain: (pp - 1) micro-batches of the slowest stage
  double step_s = 0;
  double flops_per_gpu_s = 0;  // the peak x efficiency used
};

StepTime estimate_step_time(const PlanLayout& layout, const model::ModelConfig& config, std::int64_t seq_len, bool bf16,
                            const std::vector<StageWork>& stages, const PlanAssumptions& assumptions);

}  // namespace kiln::plan
