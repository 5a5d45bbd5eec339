#pragma once
// Model FLOPs utilisation for the live line (DESIGN.md §1 "measured, not assumed": the peak
// used is printed next to the MFU). The FLOPs per token of a model come from
// model::flops_per_token (trainer/model/model_config.hpp).
#include <cstdint>

namespace kiln::metrics {

// Model FLOPs utilisation as a fraction; 0 when the peak is unknown.
double model_flops_utilisation(double flops_per_token, double tokens_per_second, double peak_flops);

// Estimated fp32 peak of `threads` CPU cores (0 = all): cores * clock * FLOPs per cycle from
// /proc/cpuinfo (32 with AVX2+FMA, 64 with AVX-512, 8 otherwise). An estimate: set
// log.peak_tflops in the recipe for a measured figure. 0 when it cannot be read.
double estimate_cpu_peak_flops(int threads);

}  // namespace kiln::metrics
