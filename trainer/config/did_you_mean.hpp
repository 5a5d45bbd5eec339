#pragma once
// "did you mean" for misspelt names: the closest candidate by edit distance, when it is close
// enough to be a plausible typo rather than a different word.
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace kiln::config {

// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
// adjacent characters ("lr" -> "rl") each cost 1.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate nearest to word, if within max(2, |word| / 3) edits; ties go to the first.
std::optional<std::string> closest_match(std::string_view word,
                                         std::span<const std::string> candidates);

}  // namespace kiln::config
