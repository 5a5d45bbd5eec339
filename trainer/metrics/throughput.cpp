#include "trainer/metrics/throughput.hpp"

#include <algorithm>

namespace kiln::metrics {

ThroughputMeter::ThroughputMeter(std::size_t window_steps)
    : window_steps_(std::max<std::size_t>(1, window_steps)) {}

void ThroughputMeter::record(std::int64_t tokens, double seconds) {
  samples_.push_back({tokens, seconds});
  window_tokens_ += tokens;
  window_seconds_ += seconds;
  if (samples_.size() > window_steps_) {
    window_tokens_ -= samples_.front().tokens;
    window_seconds_ -= samples_.front().seconds;
    samples_.pop_front();
  }
}

double ThroughputMeter::tokens_per_second() const {
  return window_seconds_ > 0 ? static_cast<double>(window_tokens_) / window_seconds_ : 0.0;
}

double ThroughputMeter::seconds_per_step() const {
  return samples_.empty() ? 0.0 : window_seconds_ / static_cast<double>(samples_.size());
}

std::optional<double> ThroughputMeter::eta_seconds(std::int64_t remaining_steps) const {
  if (samples_.empty()) return std::nullopt;
  return seconds_per_step() * static_cast<double>(std::max<std::int64_t>(0, remaining_steps));
}

}  // namespace kiln::metrics
