#include "trainer/plan/plan_assumptions.hpp"

#include <fmt/format.h>

#include "trainer/core/error.hpp"
#include "trainer/metrics/model_flops.hpp"

namespace kiln::plan {

PlanAssumptions::PlanAssumptions() : peak_bf16_tflops(metrics::gpu_bf16_peak_flops("NVIDIA H100") / 1e12) {}

void PlanAssumptions::check() const {
  const auto positive = [](double value, const char* flag) {
    if (!(value > 0)) fail("{}: {} is not a positive number", flag, value);
  };
  positive(gpu_memory_gib, "--gpu-memory");
  positive(gpus_per_node, "--gpus-per-node");
  positive(peak_bf16_tflops, "--peak-tflops");
  positive(peak_fp32_tflops, "--fp32-peak-tflops");
  positive(efficiency, "--efficiency");
  if (efficiency > 1) fail("--efficiency: {} is above 1 (it is the fraction of the peak reached)", efficiency);
  positive(nvlink_gbps, "--nvlink-gbps");
  positive(ib_gbps, "--ib-gbps");
}

std::string describe(const PlanAssumptions& a) {
  return fmt::format(
      "assumptions: {:g} GiB per GPU (--gpu-memory), {} GPUs per node (--gpus-per-node); compute at {:g}% "
      "(--efficiency) of {:g} TFLOP/s bf16 (--peak-tflops) or {:g} TFLOP/s fp32 (--fp32-peak-tflops) per GPU; "
      "NVLink {:g} GB/s inside a node (--nvlink-gbps), InfiniBand {:g} GB/s between nodes (--ib-gbps), per GPU and "
      "direction; communication not overlapped with compute; 1F1B pipeline: (micro-batches + pp - 1) x the "
      "slowest stage's micro-batch",
      a.gpu_memory_gib, a.gpus_per_node, 100 * a.efficiency, a.peak_bf16_tflops, a.peak_fp32_tflops, a.nvlink_gbps,
      a.ib_gbps);
}

nlohmann::json to_json(const PlanAssumptions& a) {
  return {{"gpu_memory_gib", a.gpu_memory_gib},
          {"gpus_per_node", a.gpus_per_node},
          {"peak_bf16_tflops", a.peak_bf16_tflops},
          {"peak_fp32_tflops", a.peak_fp32_tflops},
          {"efficiency", a.efficiency},
          {"nvlink_gbps", a.nvlink_gbps},
          {"ib_gbps", a.ib_gbps},
          {"overlap", "none"},
          {"pipeline_schedule", "1F1B"}};
}

}  // namespace kiln::plan
