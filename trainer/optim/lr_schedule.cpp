#include "trainer/optim/lr_schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "trainer/core/error.hpp"

namespace kiln::optim {

namespace {

void check_config(const LrScheduleConfig& c) {
  if (!(c.lr > 0.0)) fail("learning-rate schedule: lr must be > 0, got {}", c.lr);
  if (c.min_lr < 0.0 || c.min_lr > c.lr) {
    fail("learning-rate schedule: min_lr must be in [0, lr = {}], got {}", c.lr, c.min_lr);
  }
  if (c.warmup_steps < 0) fail("learning-rate schedule: warmup_steps is negative ({})", c.warmup_steps);
  if (c.kind == LrScheduleKind::constant) return;
  if (c.decay_steps <= 0) {
    fail("learning-rate schedule: {} needs decay_steps > 0, got {}", to_string(c.kind),
         c.decay_steps);
  }
  if (c.kind == LrScheduleKind::wsd && c.warmup_steps + c.decay_steps > c.total_steps) {
    fail("learning-rate schedule: wsd warmup ({}) + decay ({}) exceed the {} steps of the run",
         c.warmup_steps, c.decay_steps, c.total_steps);
  }
}

}  // namespace

LrSchedule::LrSchedule(LrScheduleConfig config) : config_(config) { check_config(config_); }

double LrSchedule::decayed(double progress) const {
  const double p = std::clamp(progress, 0.0, 1.0);
  const double span = config_.lr - config_.min_lr;
  if (config_.kind == LrScheduleKind::cosine) {
    return config_.min_lr + span * 0.5 * (1.0 + std::cos(std::numbers::pi * p));
  }
  return config_.lr - span * p;  // linear, and the decay phase of wsd
}

double LrSchedule::lr_at(std::int64_t step) const {
  if (step < 0) fail("learning-rate schedule: step must be >= 0, got {}", step);
  const auto& c = config_;
  if (step < c.warmup_steps) {
    return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  }
  const auto decay = static_cast<double>(c.decay_steps);
  switch (c.kind) {
    case LrScheduleKind::constant: return c.lr;
    case LrScheduleKind::cosine:
    case LrScheduleKind::linear:
      return decayed(static_cast<double>(step - c.warmup_steps) / decay);
    case LrScheduleKind::wsd: {
      const std::int64_t decay_start = c.total_steps - c.decay_steps;
      if (step < decay_start) return c.lr;
      return decayed(static_cast<double>(step - decay_start) / decay);
    }
  }
  return c.lr;
}

nlohmann::json LrSchedule::to_json() const {
  return {{"kind", std::string(to_string(config_.kind))},
          {"lr", config_.lr},
          {"min_lr", config_.min_lr},
          {"warmup_steps", config_.warmup_steps},
          {"decay_steps", config_.decay_steps},
          {"total_steps", config_.total_steps}};
}

LrSchedule LrSchedule::from_json(const nlohmann::json& json) {
  try {
    const auto name = json.at("kind").get<std::string>();
    const auto kind = parse_lr_schedule_kind(name);
    if (!kind) fail("learning-rate schedule: unknown kind '{}'", name);
    LrScheduleConfig config;
    config.kind = *kind;
    config.lr = json.at("lr").get<double>();
    config.min_lr = json.at("min_lr").get<double>();
    config.warmup_steps = json.at("warmup_steps").get<std::int64_t>();
    config.decay_steps = json.at("decay_steps").get<std::int64_t>();
    config.total_steps = json.at("total_steps").get<std::int64_t>();
    return LrSchedule(config);
  } catch (const nlohmann::json::exception& error) {
    fail("learning-rate schedule: malformed saved state: {}", error.what());
  }
}

}  // namespace kiln::optim
