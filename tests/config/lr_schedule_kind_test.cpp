// The schedule kind belongs to the recipe (trainer/config); optim builds its schedule from it.
#include "trainer/config/lr_schedule_kind.hpp"

#include <gtest/gtest.h>

#include <type_traits>

#include "trainer/config/recipe_fields.hpp"
#include "trainer/optim/lr_schedule.hpp"

namespace kiln::config {
namespace {

TEST(LrScheduleKind, OneNameTableForRecipesAndCheckpoints) {
  for (const auto& [kind, name] : lr_schedule_kind_names) {
    EXPECT_EQ(to_string(kind), name);
    EXPECT_EQ(parse_lr_schedule_kind(name), kind);
    EXPECT_EQ(enum_name(kind), name);  // the recipe loader spells it the same way
  }
  EXPECT_EQ(parse_lr_schedule_kind("cosine_with_restarts"), std::nullopt);
}

TEST(LrScheduleKind, OptimTakesTheKindFromConfig) {
  static_assert(std::is_same_v<optim::LrScheduleKind, LrScheduleKind>);
  optim::LrScheduleConfig schedule;
  schedule.kind = LrScheduleKind::wsd;
  EXPECT_EQ(schedule.kind, LrScheduleKind::wsd);
}

}  // namespace
}  // namespace kiln::config
