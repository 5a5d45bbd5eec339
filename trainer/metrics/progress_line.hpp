#pragma once
// The live line `kiln train` prints per logged step (DESIGN.md §10):
//   step 120/2000 | loss 3.2141 | lr 3.00e-04 | grad 0.812 | 41.2k tok/s | MFU 12.3% (peak 1.5 TFLOP/s fp32) | ETA 4m12s
// The MFU part is left out when the peak is unknown, the ETA part until it can be estimated.
#include <cstdint>
#include <optional>
#include <string>

namespace kiln::metrics {

struct ProgressLine {
  std::int64_t step = 0;         // optimizer steps completed
  std::int64_t total_steps = 0;
  double loss = 0.0;
  double lr = 0.0;
  double grad_norm = 0.0;
  double tokens_per_second = 0.0;
  std::optional<double> mfu;     // fraction of peak_flops
  double peak_flops = 0.0;       // FLOP/s the MFU is relative to
  std::string precision = "fp32";
  std::optional<double> eta_seconds;
};

std::string format_progress_line(const ProgressLine& line);

// 950 -> "950", 41234 -> "41.2k", 1.5e6 -> "1.50M", 2.1e9 -> "2.10G"
std::string format_count(double value);
// 42 -> "42s", 252 -> "4m12s", 3720 -> "1h02m", 183600 -> "2d03h"
std::string format_duration(double seconds);
// 1.5e12 -> "1.5 TFLOP/s", 9.89e14 -> "989 TFLOP/s", 3.2e10 -> "32.0 GFLOP/s"
std::string format_flops_rate(double flops_per_second);

}  // namespace kiln::metrics
