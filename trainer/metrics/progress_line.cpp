#include "trainer/metrics/progress_line.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <utility>

namespace kiln::metrics {

namespace {

// Three significant figures at most, never switching to exponent notation.
std::string three_figures(double value) {
  if (value >= 100.0) return fmt::format("{:.0f}", value);
  if (value >= 10.0) return fmt::format("{:.1f}", value);
  return fmt::format("{:.2g}", value);
}

}  // namespace

std::string format_count(double value) {
  if (!std::isfinite(value)) return "?";
  if (value < 1e3) return fmt::format("{:.0f}", value);
  if (value < 1e6) return fmt::format("{:.1f}k", value / 1e3);
  if (value < 1e9) return fmt::format("{:.2f}M", value / 1e6);
  return fmt::format("{:.2f}G", value / 1e9);
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<std::int64_t>(std::llround(seconds));
  if (total < 60) return fmt::format("{}s", total);
  if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, total % 60);
  if (total < 86400) return fmt::format("{}h{:02d}m", total / 3600, total % 3600 / 60);
  return fmt::format("{}d{:02d}h", total / 86400, total % 86400 / 3600);
}

std::string format_flops_rate(double flops_per_second) {
  static constexpr std::array<std::pair<double, const char*>, 4> kUnits = {
      {{1e15, "PFLOP/s"}, {1e12, "TFLOP/s"}, {1e9, "GFLOP/s"}, {1e6, "MFLOP/s"}}};
  for (const auto& [scale, unit] : kUnits) {
    if (flops_per_second >= scale) return fmt::format("{} {}", three_figures(flops_per_second / scale), unit);
  }
  return fmt::format("{:.0f} FLOP/s", flops_per_second);
}

std::string format_progress_line(const ProgressLine& line) {
  std::string text = fmt::format("step {}/{} | loss {:.4f} | lr {:.2e} | grad {:.3f} | {} tok/s",
                                 line.step, line.total_steps, line.loss, line.lr, line.grad_norm,
                                 format_count(line.tokens_per_second));
  if (line.mfu && line.peak_flops > 0) {
    text += fmt::format(" | MFU {:.1f}% (peak {} {})", *line.mfu * 100.0,
                        format_flops_rate(line.peak_flops), line.precision);
  }
  if (line.eta_seconds) text += fmt::format(" | ETA {}", format_duration(*line.eta_seconds));
  return text;
}

}  // namespace kiln::metrics
