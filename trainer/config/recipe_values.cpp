#include "trainer/config/recipe_values.hpp"

#include <algorithm>
#include <cctype>

namespace kiln::config {

namespace {

std::string bound_text(double value) { return fmt::format("{}", value); }

}  // namespace

std::string describe_bounds(const FieldRule& rule) {
  if (rule.min && rule.max) {
    return fmt::format(" in [{}, {}{}", bound_text(*rule.min), bound_text(*rule.max),
                       rule.max_exclusive ? ")" : "]");
  }
  if (rule.min) return fmt::format(" {} {}", rule.min_exclusive ? ">" : ">=", bound_text(*rule.min));
  if (rule.max) return fmt::format(" {} {}", rule.max_exclusive ? "<" : "<=", bound_text(*rule.max));
  return "";
}

ParseError check_bounds(double value, const FieldRule& rule) {
  const bool below = rule.min && (rule.min_exclusive ? value <= *rule.min : value < *rule.min);
  const bool over = rule.max && (rule.max_exclusive ? value >= *rule.max : value > *rule.max);
  if (!below && !over) return std::nullopt;
  return fmt::format("must be{}, found {}", describe_bounds(rule), value);
}

std::optional<double> parse_finite_double(std::string_view text) {
  // from_chars refuses a leading '+', which YAML allows; strip it.
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  double value = 0;
  const auto [end, status] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || status != std::errc() || end != text.data() + text.size() ||
      !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::optional<bool> parse_bool(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  return std::nullopt;
}

}  // namespace kiln::config
