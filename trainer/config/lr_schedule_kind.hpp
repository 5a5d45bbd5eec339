#pragma once
// The learning-rate schedule kinds a recipe can name (optim.schedule). The recipe owns the
// kind; trainer/optim builds the schedule from it, so config never depends on optim.
#include <array>
#include <optional>
#include <string_view>
#include <utility>

namespace kiln::config {

enum class LrScheduleKind { constant, cosine, linear, wsd };

// The one name table: recipes, --set overrides and checkpoint meta all spell kinds this way.
inline constexpr std::array<std::pair<LrScheduleKind, std::string_view>, 4> lr_schedule_kind_names{
    {{LrScheduleKind::constant, "constant"},
     {LrScheduleKind::cosine, "cosine"},
     {LrScheduleKind::linear, "linear"},
     {LrScheduleKind::wsd, "wsd"}}};

std::string_view to_string(LrScheduleKind kind);
std::optional<LrScheduleKind> parse_lr_schedule_kind(std::string_view name);

}  // namespace kiln::config
