#pragma once
// Model FLOPs utilisation for the live line (DESIGN.md §1 "measured, not assumed": the peak
// used is printed next to the MFU). The FLOPs per token of a model come from
// model::flops_per_token (trainer/model/model_config.hpp).
#include <cstdint>
#include <string_view>

namespace kiln::metrics {

// Model FLOPs utilisation as a fraction; 0 when the peak is unknown.
double model_flops_utilisation(double flops_per_token, double tokens_per_second, double peak_flops);

// Estimated fp32 peak of `threads` CPU cores (0 = all): cores * clock * FLOPs per cycle
// (32 with AVX2+FMA, 64 with AVX-512, 8 otherwise, from /proc/cpuinfo's flags). The clock is
// measured (measured_cpu_clock_hz) where possible, else /proc/cpuinfo's "cpu MHz", which in
// virtual machines is often the base clock and understates the peak. Set log.peak_tflops in
// the recipe for a figure of your own. 0 when nothing can be read.
double estimate_cpu_peak_flops(int threads);

// The dense bf16 tensor-core peak of a GPU from its spec sheet, by the name the CUDA runtime
// reports ("NVIDIA H200" -> 989e12: H100 and H200 SXM; A100 312e12; L40S 362e12); 0 for a
// device the table does not know (the emulated device included): set log.peak_tflops.
double gpu_bf16_peak_flops(std::string_view device_name);

// The clock this thread runs at, turbo included: a chain of dependent register adds (one per
// cycle on every x86-64 core) timed on the thread's CPU clock, best of three ~10 ms runs,
// measured once per process. 0 where it cannot be measured (not x86-64).
double measured_cpu_clock_hz();

}  // namespace kiln::metrics
