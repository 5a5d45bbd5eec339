#pragma once
// Every number `kiln plan` assumes rather than derives, in one place: printed above its table,
// written into its JSON, and each overridable by the flag named beside it.
//
// Defaults describe an H100 SXM cluster: the GPU's dense bf16 tensor-core peak from the table
// the training MFU uses (metrics::gpu_bf16_peak_flops), its fp32 (CUDA-core) peak, as kiln's
// fp32 GEMMs compute in fp32 without TF32; NVLink 4 (900 GB/s both ways, 450 per direction) inside a
// node; one 400 Gb/s NDR InfiniBand NIC per GPU (50 GB/s) between nodes.
#include <nlohmann/json.hpp>
#include <string>

namespace kiln::plan {

struct PlanAssumptions {
  double gpu_memory_gib = 80;    // --gpu-memory
  int gpus_per_node = 8;         // --gpus-per-node
  double peak_bf16_tflops;       // --peak-tflops (dense bf16, per GPU)
  double peak_fp32_tflops = 67;  // --fp32-peak-tflops
  double efficiency = 0.45;      // --efficiency: the fraction of the peak the model's FLOPs reach
  double nvlink_gbps = 450;      // --nvlink-gbps: GB/s per GPU per direction inside a node
  double ib_gbps = 50;           // --ib-gbps: GB/s per GPU per direction between nodes

  PlanAssumptions();
  // Throws kiln::Error naming the flag of a value that is not positive (or an efficiency above 1).
  void check() const;
};

// One paragraph for the table's header.
std::string describe(const PlanAssumptions& assumptions);
nlohmann::json to_json(const PlanAssumptions& assumptions);

}  // namespace kiln::plan
