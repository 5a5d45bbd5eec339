#include "trainer/checkpoint/checkpoint_names.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace kiln::checkpoint {

namespace {

constexpr std::string_view kStepPrefix = "step_";

bool all_digits(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

std::string step_dir_name(std::int64_t step) { return fmt::format("step_{:08d}", step); }

std::optional<std::int64_t> parse_step_dir_name(std::string_view name) {
  if (!name.starts_with(kStepPrefix)) return std::nullopt;
  const std::string_view digits = name.substr(kStepPrefix.size());
  if (digits.size() < 8 || !all_digits(digits)) return std::nullopt;
  std::int64_t step = 0;
  const auto [end, status] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
  if (status != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return step;
}

std::optional<std::int64_t> parse_temporary_step_dir_name(std::string_view name) {
  if (!name.ends_with(kTemporarySuffix)) return std::nullopt;
  return parse_step_dir_name(name.substr(0, name.size() - kTemporarySuffix.size()));
}

std::string rank_file_name(int rank) { return fmt::format("rank_{:05d}.h5", rank); }

bool is_rank_file_name(std::string_view name) {
  constexpr std::string_view prefix = "rank_", suffix = ".h5";
  if (!name.starts_with(prefix) || !name.ends_with(suffix)) return false;
  return all_digits(name.substr(prefix.size(), name.size() - prefix.size() - suffix.size()));
}

}  // namespace kiln::checkpoint
