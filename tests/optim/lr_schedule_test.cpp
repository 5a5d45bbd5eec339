#include "trainer/optim/lr_schedule.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "trainer/core/error.hpp"

namespace {

using kiln::optim::LrSchedule;
using kiln::optim::LrScheduleConfig;
using kiln::optim::LrScheduleKind;

LrSchedule make(LrScheduleKind kind, std::int64_t warmup, std::int64_t decay, std::int64_t total) {
  return LrSchedule(LrScheduleConfig{kind, 1.0e-3, 1.0e-4, warmup, decay, total});
}

TEST(LrSchedule, WarmupRisesLinearlyFromFirstStep) {
  const auto schedule = make(LrScheduleKind::cosine, 10, 90, 100);
  EXPECT_DOUBLE_EQ(schedule.lr_at(0), 1.0e-4);  // 1e-3 * 1/10, never zero
  EXPECT_DOUBLE_EQ(schedule.lr_at(4), 5.0e-4);
  EXPECT_DOUBLE_EQ(schedule.lr_at(9), 1.0e-3);
}

TEST(LrSchedule, ConstantHoldsAfterWarmup) {
  const auto schedule = make(LrScheduleKind::constant, 4, 0, 100);
  EXPECT_DOUBLE_EQ(schedule.lr_at(1), 5.0e-4);
  EXPECT_DOUBLE_EQ(schedule.lr_at(4), 1.0e-3);
  EXPECT_DOUBLE_EQ(schedule.lr_at(1000), 1.0e-3);
}

TEST(LrSchedule, CosineHitsPeakMidpointAndFloor) {
  const auto schedule = make(LrScheduleKind::cosine, 10, 90, 100);
  EXPECT_DOUBLE_EQ(schedule.lr_at(10), 1.0e-3);
  EXPECT_NEAR(schedule.lr_at(55), 5.5e-4, 1e-15);  // halfway: (lr + min_lr) / 2
  // a quarter of the way: min + (lr - min) * (1 + cos(pi/4)) / 2
  const double quarter = 1.0e-4 + 9.0e-4 * (1.0 + std::cos(std::numbers::pi / 4)) / 2;
  const auto even = make(LrScheduleKind::cosine, 0, 100, 100);
  EXPECT_NEAR(even.lr_at(25), quarter, 1e-15);
  EXPECT_DOUBLE_EQ(schedule.lr_at(100), 1.0e-4);
  EXPECT_DOUBLE_EQ(schedule.lr_at(500), 1.0e-4);  // holds the floor past the decay
}

TEST(LrSchedule, LinearDecaysEvenly) {
  const auto schedule = make(LrScheduleKind::linear, 0, 10, 10);
  EXPECT_DOUBLE_EQ(schedule.lr_at(0), 1.0e-3);
  EXPECT_NEAR(schedule.lr_at(5), 5.5e-4, 1e-15);
  EXPECT_NEAR(schedule.lr_at(9), 1.9e-4, 1e-15);
  EXPECT_DOUBLE_EQ(schedule.lr_at(10), 1.0e-4);
}

TEST(LrSchedule, WsdWarmsHoldsThenDecaysAtTheEnd) {
  const auto schedule = make(LrScheduleKind::wsd, 10, 20, 100);
  EXPECT_DOUBLE_EQ(schedule.lr_at(9), 1.0e-3);
  EXPECT_DOUBLE_EQ(schedule.lr_at(10), 1.0e-3);
  EXPECT_DOUBLE_EQ(schedule.lr_at(79), 1.0e-3);  // last stable step
  EXPECT_DOUBLE_EQ(schedule.lr_at(80), 1.0e-3);  // decay starts from the peak
  EXPECT_NEAR(schedule.lr_at(90), 5.5e-4, 1e-15);
  EXPECT_NEAR(schedule.lr_at(99), 1.0e-3 - 9.0e-4 * 19.0 / 20.0, 1e-15);
  EXPECT_DOUBLE_EQ(schedule.lr_at(100), 1.0e-4);
}

TEST(LrSchedule, ImpossibleConfigsAreRefused) {
  EXPECT_THROW(LrSchedule(LrScheduleConfig{LrScheduleKind::cosine, 0.0, 0.0, 0, 10, 10}), kiln::Error);
  EXPECT_THROW(LrSchedule(LrScheduleConfig{LrScheduleKind::cosine, 1e-3, 2e-3, 0, 10, 10}), kiln::Error);
  EXPECT_THROW(LrSchedule(LrScheduleConfig{LrScheduleKind::linear, 1e-3, 0.0, 0, 0, 10}), kiln::Error);
  EXPECT_THROW(LrSchedule(LrScheduleConfig{LrScheduleKind::wsd, 1e-3, 0.0, 5, 10, 10}), kiln::Error);
  EXPECT_THROW(make(LrScheduleKind::constant, 0, 0, 1).lr_at(-1), kiln::Error);
}

TEST(LrSchedule, JsonRoundTrip) {
  const auto schedule = make(LrScheduleKind::wsd, 10, 20, 100);
  const auto restored = LrSchedule::from_json(schedule.to_json());
  EXPECT_EQ(restored.config(), schedule.config());
  EXPECT_EQ(schedule.to_json()["kind"], "wsd");
  EXPECT_THROW(LrSchedule::from_json({{"kind", "exponential"}}), kiln::Error);
}

}  // namespace
