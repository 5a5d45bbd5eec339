#include "data/curate/gopher_quality.hpp"

#include <algorithm>

#include "data/curate/text_units.hpp"

namespace kiln::curate {

namespace {

bool on(double threshold) { return threshold > 0; }

std::size_t count_occurrences(std::string_view text, std::string_view needle) {
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

bool ends_with_ellipsis(std::string_view line) {
  line = rstrip(line);
  return line.ends_with("...") || line.ends_with("\u2026");
}

bool starts_with_bullet(std::string_view line) {
  line = lstrip(line);
  return line.starts_with("\u2022") || line.starts_with("-");
}

struct WordCounts {
  std::size_t tokens = 0;        // every token, punctuation included
  std::size_t words = 0;         // tokens that are not only punctuation
  std::size_t word_chars = 0;    // code points in those
  std::size_t with_letter = 0;
  std::size_t stop_words = 0;     // distinct stop words present (the reference's set intersection)
};

WordCounts count_words(std::string_view text, const GopherQualityOptions& options) {
  thread_local std::vector<std::string_view> tokens;
  word_tokens(text, tokens);
  WordCounts counts;
  counts.tokens = tokens.size();
  std::vector<bool> stop_word_seen(options.stop_words.size(), false);
  for (std::string_view token : tokens) {
    if (!is_punctuation_token(token)) {
      ++counts.words;
      counts.word_chars += code_points(token);
    }
    counts.with_letter += has_letter(token);
    const auto stop_word = std::find(options.stop_words.begin(), options.stop_words.end(), token);
    if (stop_word != options.stop_words.end()) stop_word_seen[static_cast<std::size_t>(stop_word - options.stop_words.begin())] = true;
  }
  counts.stop_words = static_cast<std::size_t>(std::count(stop_word_seen.begin(), stop_word_seen.end(), true));
  return counts;
}

std::string_view check_lines(std::string_view text, const GopherQualityOptions& options) {
  // str.splitlines(): blank lines count as lines, as they do in the reference's ratios.
  thread_local std::vector<std::string_view> lines;
  split_python_lines(text, lines);
  if (lines.empty()) return "";
  const auto total = static_cast<double>(lines.size());
  const auto bullets = static_cast<double>(std::count_if(lines.begin(), lines.end(), starts_with_bullet));
  if (on(options.max_bullet_lines_ratio) && bullets / total > options.max_bullet_lines_ratio) {
    return "gopher_too_many_bullets";
  }
  const auto ellipses = static_cast<double>(std::count_if(lines.begin(), lines.end(), ends_with_ellipsis));
  if (on(options.max_ellipsis_lines_ratio) && ellipses / total > options.max_ellipsis_lines_ratio) {
    return "gopher_too_many_end_ellipsis";
  }
  return "";
}

}  // namespace

std::string_view gopher_quality_check(std::string_view text, const GopherQualityOptions& options) {
  const WordCounts counts = count_words(text, options);
  const auto words = static_cast<double>(counts.words);
  if (on(options.min_doc_words) && words < options.min_doc_words) return "gopher_short_doc";
  if (on(options.max_doc_words) && words > options.max_doc_words) return "gopher_long_doc";
  if (counts.words == 0) return "gopher_no_words";  // only reachable with the length rules off

  const double mean_length = static_cast<double>(counts.word_chars) / words;
  if (on(options.min_avg_word_length) && mean_length < options.min_avg_word_length) return "gopher_below_avg_word_length";
  if (on(options.max_avg_word_length) && mean_length > options.max_avg_word_length) return "gopher_above_avg_word_length";

  // Ratios per token, punctuation tokens included, as the reference computes them.
  const auto tokens = static_cast<double>(counts.tokens);
  if (on(options.max_symbol_word_ratio)) {
    if (static_cast<double>(count_occurrences(text, "#")) / tokens > options.max_symbol_word_ratio) {
      return "gopher_too_many_hashes";
    }
    const auto ellipses = count_occurrences(text, "...") + count_occurrences(text, "\u2026");
    if (static_cast<double>(ellipses) / tokens > options.max_symbol_word_ratio) return "gopher_too_many_ellipsis";
  }
  if (const auto reason = check_lines(text, options); !reason.empty()) return reason;
  if (on(options.min_alpha_words_ratio) &&
      static_cast<double>(counts.with_letter) / tokens < options.min_alpha_words_ratio) {
    return "gopher_below_alpha_threshold";
  }
  if (on(options.min_stop_words) && static_cast<double>(counts.stop_words) < options.min_stop_words) {
    return "gopher_not_enough_stop_words";
  }
  return "";
}

}  // namespace kiln::curate
