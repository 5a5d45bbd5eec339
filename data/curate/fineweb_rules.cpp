#include "data/curate/fineweb_rules.hpp"

#include <algorithm>
#include <vector>

#include "data/curate/gopher_repetition.hpp"
#include "data/curate/text_units.hpp"

namespace kiln::curate {

namespace {

bool ends_with_stop_char(std::string_view line) {
  return line.ends_with('.') || line.ends_with('\'') || line.ends_with('"') || line.ends_with('!') ||
         line.ends_with('?');
}

// Lines as the reference splits them: on every '\n', a trailing one giving an empty line.
void split_on_newline(std::string_view text, std::vector<std::string_view>& lines) {
  lines.clear();
  std::size_t begin = 0;
  while (true) {
    const std::size_t newline = text.find('\n', begin);
    lines.push_back(text.substr(begin, newline == std::string_view::npos ? std::string_view::npos : newline - begin));
    if (newline == std::string_view::npos) return;
    begin = newline + 1;
  }
}

}  // namespace

std::string_view fineweb_check(std::string_view text, const FineWebOptions& options) {
  thread_local std::vector<std::string_view> lines;
  split_on_newline(text, lines);
  const auto total = static_cast<double>(lines.size());

  if (options.min_line_punct_ratio > 0) {
    const double ratio = static_cast<double>(std::count_if(lines.begin(), lines.end(), ends_with_stop_char)) / total;
    if (ratio <= options.min_line_punct_ratio && !(ratio == 0 && options.line_punct_exclude_zero)) {
      return "fineweb_line_punct_ratio";
    }
  }
  if (options.max_short_line_ratio > 0) {
    const auto short_lines = std::count_if(lines.begin(), lines.end(), [&](std::string_view line) {
      return code_points(line) <= static_cast<std::size_t>(options.short_line_length);
    });
    if (static_cast<double>(short_lines) / total >= options.max_short_line_ratio) return "fineweb_short_line_ratio";
  }
  if (options.max_char_dup_ratio > 0) {
    std::vector<std::string_view> non_empty;
    for (std::string_view line : lines) {
      if (!strip(line).empty()) non_empty.push_back(line);
    }
    const auto chars = code_points(text) - static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    if (chars > 0 && static_cast<double>(find_duplicates(non_empty).chars) / static_cast<double>(chars) >=
                         options.max_char_dup_ratio) {
      return "fineweb_char_dup_ratio";
    }
  }
  if (options.max_newline_ratio > 0) {
    thread_local std::vector<std::string_view> words;
    word_tokens(text, words);
    const auto newlines = static_cast<double>(std::count(text.begin(), text.end(), '\n'));
    if (words.empty() || newlines / static_cast<double>(words.size()) > options.max_newline_ratio) {
      return words.empty() ? "fineweb_no_words" : "fineweb_list_ratio";
    }
  }
  return "";
}

}  // namespace kiln::curate
