#include "trainer/plan/step_time.hpp"

#include <algorithm>

#include "trainer/plan/cp_and_recompute.hpp"

namespace kiln::plan {

namespace {

// Whether every group of `size` ranks `stride` apart lies inside one node.
bool groups_inside_nodes(int stride, int size, int world, int gpus_per_node) {
  for (int first = 0; first < world; ++first) {
    if ((first / stride) % size != 0) continue;  // not the group's first rank
    const int last = first + (size - 1) * stride;
    if (first / gpus_per_node != last / gpus_per_node) return false;
  }
  return true;
}

double seconds_for(double bytes, bool inside_node, const PlanAssumptions& a) {
  return bytes / ((inside_node ? a.nvlink_gbps : a.ib_gbps) * 1e9);
}

double traffic_seconds(const GroupBytes& bytes, const GroupPlacement& at, const PlanAssumptions& a) {
  return seconds_for(bytes.tp, at.tp_inside_node, a) + seconds_for(bytes.cp, at.cp_inside_node, a) +
         seconds_for(bytes.pp + bytes.embedding, at.pp_inside_node, a) + seconds_for(bytes.dp, at.dp_inside_node, a);
}

}  // namespace

GroupPlacement place_groups(const PlanLayout& l, int gpus_per_node) {
  const int world = l.gpus();
  GroupPlacement at;
  at.tp_inside_node = groups_inside_nodes(1, l.tp, world, gpus_per_node);
  at.cp_inside_node = groups_inside_nodes(l.tp, l.cp, world, gpus_per_node);
  // Gradients are reduced over dp x cp: groups of dp x cp ranks, tp apart.
  at.dp_inside_node = groups_inside_nodes(l.tp, l.cp * l.dp, world, gpus_per_node);
  at.pp_inside_node = groups_inside_nodes(l.tp * l.cp * l.dp, l.pp, world, gpus_per_node);
  return at;
}

// flops_per_token is linear in the number of blocks: the difference of two and one block is a
// block's, and what one block leaves is the head's.
ModelFlops model_flops(const model::ModelConfig& config, std::int64_t seq_len) {
  model::ModelConfig one = config, two = config;
  one.n_layers = 1;
  two.n_layers = 2;
  const double with_one = model::flops_per_token(one, seq_len);
  const double block = model::flops_per_token(two, seq_len) - with_one;
  return {block, with_one - block};
}

StepTime estimate_step_time(const PlanLayout& layout, const model::ModelConfig& config, std::int64_t seq_len, bool bf16,
                            const std::vector<StageWork>& stages, const PlanAssumptions& a) {
  const ModelFlops flops = model_flops(config, seq_len);
  const double recompute = recompute_flops_per_token(layout.recompute, flops.block);
  const double tokens_per_micro_batch = static_cast<double>(layout.micro_batch_size * seq_len);
  const double rank_share = 1.0 / (layout.tp * layout.cp);
  StepTime time;
  time.flops_per_gpu_s = (bf16 ? a.peak_bf16_tflops : a.peak_fp32_tflops) * 1e12 * a.efficiency;
  const GroupPlacement at = place_groups(layout, a.gpus_per_node);
  double slowest_compute = 0, slowest_traffic = 0, slowest = 0, per_step_traffic = 0;
  for (const StageWork& stage : stages) {
    const double stage_flops = stage.blocks * (flops.block + recompute) + (stage.last ? flops.head : 0.0);
    const double compute = stage_flops * tokens_per_micro_batch * rank_share / time.flops_per_gpu_s;
    const double traffic = traffic_seconds(stage.traffic.per_micro_batch, at, a);
    if (compute + traffic > slowest) {
      slowest = compute + traffic;
      slowest_compute = compute;
      slowest_traffic = traffic;
    }
    per_step_traffic = std::max(per_step_traffic, traffic_seconds(stage.traffic.per_step, at, a));
  }
  const double m = layout.micro_batches;
  time.compute_s = m * slowest_compute;
  time.traffic_s = m * slowest_traffic + per_step_traffic;
  time.bubble_s = (layout.pp - 1) * slowest;
  time.step_s = (m + layout.pp - 1) * slowest + per_step_traffic;
  return time;
}

}  // namespace kiln::plan
