#pragma once
// Tokens per second and time-to-finish over a sliding window of recent steps, so the numbers
// follow the current speed (after warm-up, around evals and checkpoints) instead of the average
// since the start.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>

namespace kiln::metrics {

class ThroughputMeter {
 public:
  explicit ThroughputMeter(std::size_t window_steps = 20);

  // One optimizer step that processed `tokens` (all ranks) in `seconds` of wall time.
  // Callers usually leave out the first step, which pays for allocation and warm-up.
  void record(std::int64_t tokens, double seconds);

  bool empty() const { return samples_.empty(); }
  double tokens_per_second() const;  // 0 before any step
  double seconds_per_step() const;   // 0 before any step
  std::optional<double> eta_seconds(std::int64_t remaining_steps) const;

 private:
  struct Sample {
    std::int64_t tokens;
    double seconds;
  };
  std::size_t window_steps_;
  std::deque<Sample> samples_;
  std::int64_t window_tokens_ = 0;
  double window_seconds_ = 0.0;
};

}  // namespace kiln::metrics
