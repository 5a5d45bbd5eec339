#pragma once
// Recipe values as text: how each field type is parsed from a YAML scalar (with the rule's
// bounds) and written back, so that writing then parsing gives the same value.
#include <charconv>
#include <cmath>
#include <concepts>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "trainer/config/did_you_mean.hpp"
#include "trainer/config/recipe_fields.hpp"
#include "trainer/core/utf8.hpp"

namespace kiln::config {

// Outcome of parsing one value: nullopt on success, else what was wrong (for the message).
using ParseError = std::optional<std::string>;

std::string describe_bounds(const FieldRule& rule);  // " > 0", " in [0, 1)", "" ...
ParseError check_bounds(double value, const FieldRule& rule);
std::optional<double> parse_finite_double(std::string_view text);
std::optional<bool> parse_bool(std::string_view text);

// --- what a field expects, in words -------------------------------------------------------
template <class T>
std::string expected_value(const FieldRule& rule) {
  std::string text;
  if constexpr (std::same_as<T, bool>) {
    text = "true or false";
  } else if constexpr (std::same_as<T, std::string>) {
    text = "a one-line UTF-8 string";
  } else if constexpr (RecipeEnum<T>) {
    text = fmt::format("one of {}", fmt::join(enum_names<T>(), ", "));
  } else if constexpr (std::integral<T>) {
    text = "a whole number" + describe_bounds(rule);
  } else {
    text = "a number" + describe_bounds(rule);
  }
  if (rule.zero_means_auto) text += " (or auto)";
  return text;
}

// --- parsing ----------------------------------------------------------------------------------
template <std::integral T>
ParseError parse_value(std::string_view text, T& out, const FieldRule& rule) {
  if (rule.zero_means_auto && text == "auto") {
    out = 0;
    return std::nullopt;
  }
  long long whole = 0;
  const auto [end, status] = std::from_chars(text.data(), text.data() + text.size(), whole);
  if (status != std::errc() || end != text.data() + text.size()) {
    // Accept integral values in number notation ("1e6", "1000.0"): readable for big counts.
    const auto number = parse_finite_double(text);
    if (!number || std::trunc(*number) != *number || std::fabs(*number) > 9.0e18) {
      return fmt::format("expected {}, found '{}'", expected_value<T>(rule), text);
    }
    whole = static_cast<long long>(*number);
  }
  if (auto bound_error = check_bounds(static_cast<double>(whole), rule)) return bound_error;
  if (whole < static_cast<long long>(std::numeric_limits<T>::min()) ||
      whole > static_cast<long long>(std::numeric_limits<T>::max())) {
    return fmt::format("{} is too large", whole);
  }
  out = static_cast<T>(whole);
  return std::nullopt;
}

template <std::floating_point T>
ParseError parse_value(std::string_view text, T& out, const FieldRule& rule) {
  if (rule.zero_means_auto && text == "auto") {
    out = 0;
    return std::nullopt;
  }
  const auto number = parse_finite_double(text);
  if (!number) return fmt::format("expected {}, found '{}'", expected_value<T>(rule), text);
  if (auto bound_error = check_bounds(*number, rule)) return bound_error;
  out = static_cast<T>(*number);
  return std::nullopt;
}

inline ParseError parse_value(std::string_view text, bool& out, const FieldRule& rule) {
  const auto flag = parse_bool(text);
  if (!flag) return fmt::format("expected {}, found '{}'", expected_value<bool>(rule), text);
  out = *flag;
  return std::nullopt;
}

// Recipe strings are paths and names: one line of valid UTF-8 (an invalid byte would not survive
// the round trip through recipe.yaml and meta.json that a checkpoint relies on).
inline ParseError parse_value(std::string_view text, std::string& out, const FieldRule&) {
  const auto bad = first_invalid_utf8_or_control(text);
  if (bad != text.size()) {
    return fmt::format("found an invalid byte or control character 0x{:02x} at byte {}",
                       static_cast<unsigned char>(text[bad]), bad);
  }
  out = std::string(text);
  return std::nullopt;
}

template <RecipeEnum E>
ParseError parse_value(std::string_view text, E& out, const FieldRule& rule) {
  if (const auto value = parse_enum<E>(text)) {
    out = *value;
    return std::nullopt;
  }
  std::string what = fmt::format("expected {}, found '{}'", expected_value<E>(rule), text);
  const auto names = enum_names<E>();
  if (const auto suggestion = closest_match(text, names)) {
    what += fmt::format(" (did you mean {}?)", *suggestion);
  }
  return what;
}

// --- writing ----------------------------------------------------------------------------------
template <class T>
std::string value_text(const T& value, const FieldRule& rule) {
  if constexpr (std::same_as<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::same_as<T, std::string>) {
    return value;
  } else if constexpr (RecipeEnum<T>) {
    return std::string(enum_name(value));
  } else {
    if (rule.zero_means_auto && value == 0) return "auto";
    return fmt::format("{}", value);  // shortest text that parses back to the same value
  }
}

}  // namespace kiln::config
