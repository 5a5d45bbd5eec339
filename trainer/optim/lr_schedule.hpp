#pragma once
// Learning-rate schedules: a pure function of the optimizer step, so resuming a run (under any
// layout) needs no schedule state beyond the step itself; the config is still saved in
// checkpoints so a resumed run can say when the recipe's schedule changed.
//
// Steps are 0-based: lr_at(s) is the rate used by the update that takes the model from s to
// s + 1 completed steps. Phases, with W = warmup_steps, D = decay_steps, T = total_steps:
//   warmup (all kinds)  s < W          lr * (s + 1) / W   (never 0, reaches lr at s = W - 1)
//   constant            s >= W         lr
//   cosine              s >= W         min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2
//   linear              s >= W         lr + (min_lr - lr) * p
//                       with p = min(1, (s - W) / D): min_lr from s = W + D on
//   wsd                 W <= s < T-D   lr (stable)
//                       s >= T - D     lr + (min_lr - lr) * min(1, (s - (T - D)) / D)
// so lr_at(W) == lr and lr_at(W + D) == min_lr (cosine/linear), lr_at(T) == min_lr (wsd).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "trainer/config/lr_schedule_kind.hpp"

namespace kiln::optim {

// The kind is the recipe's (trainer/config); the schedule takes it from there.
using config::LrScheduleKind;
using config::parse_lr_schedule_kind;
using config::to_string;

struct LrScheduleConfig {
  LrScheduleKind kind = LrScheduleKind::cosine;
  double lr = 0.0;
  double min_lr = 0.0;
  std::int64_t warmup_steps = 0;
  std::int64_t decay_steps = 0;  // cosine/linear: length of the decay; wsd: the final phase
  std::int64_t total_steps = 0;  // used by wsd to place its decay at the end
  bool operator==(const LrScheduleConfig&) const = default;
};

class LrSchedule {
 public:
  // Throws kiln::Error for an impossible config (lr <= 0, min_lr > lr, a decay of 0 steps for
  // cosine/linear/wsd, a wsd warmup + decay longer than the run).
  explicit LrSchedule(LrScheduleConfig config);

  double lr_at(std::int64_t step) const;
  const LrScheduleConfig& config() const { return config_; }

  // {"kind": "cosine", "lr": ..., "min_lr": ..., "warmup_steps": ..., ...} for checkpoint meta.
  nlohmann::json to_json() const;
  static LrSchedule from_json(const nlohmann::json& json);

 private:
  double decayed(double progress) const;

  LrScheduleConfig config_;
};

}  // namespace kiln::optim
