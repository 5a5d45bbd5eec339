#include "data/tokenizer/split.hpp"

#include <array>
#include <utility>

namespace kiln::tok {

namespace {

constexpr std::array<std::pair<SplitBehavior, std::string_view>, 5> kBehaviorNames = {{
    {SplitBehavior::Removed, "Removed"},
    {SplitBehavior::Isolated, "Isolated"},
    {SplitBehavior::MergedWithPrevious, "MergedWithPrevious"},
    {SplitBehavior::MergedWithNext, "MergedWithNext"},
    {SplitBehavior::Contiguous, "Contiguous"},
}};

}  // namespace

std::optional<SplitBehavior> split_behavior_named(std::string_view name) {
  for (const auto& [behavior, behavior_name] : kBehaviorNames) {
    if (behavior_name == name) return behavior;
  }
  return std::nullopt;
}

std::string_view name_of(SplitBehavior behavior) {
  for (const auto& [candidate, name] : kBehaviorNames) {
    if (candidate == behavior) return name;
  }
  return "?";
}

}  // namespace kiln::tok
