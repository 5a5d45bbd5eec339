#include "trainer/config/lr_schedule_kind.hpp"

namespace kiln::config {

std::string_view to_string(LrScheduleKind kind) {
  for (const auto& [candidate, name] : lr_schedule_kind_names)
    if (candidate == kind) return name;
  return "unknown";
}

std::optional<LrScheduleKind> parse_lr_schedule_kind(std::string_view name) {
  for (const auto& [kind, candidate] : lr_schedule_kind_names)
    if (candidate == name) return kind;
  return std::nullopt;
}

}  // namespace kiln::config
