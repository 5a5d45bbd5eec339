#pragma once
// FineWeb's extra quality rules (Penedo et al. 2024, "The FineWeb Datasets", section 3.4):
// too few lines ending in punctuation, too many short lines, too many characters in
// duplicated lines, and list-like pages (many newlines per word). Published defaults, with
// the reference implementation's (datatrove's) comparisons: a page is dropped when a ratio
// crosses its threshold strictly.
#include <string_view>

namespace kiln::curate {

struct FineWebOptions {
  bool enabled = true;
  double min_line_punct_ratio = 0.12;  // drop when the ratio is < this (0 = off)
  bool line_punct_exclude_zero = false;
  double max_short_line_ratio = 0.67;  // drop when > this (0 = off)
  int short_line_length = 30;          // code points
  double max_char_dup_ratio = 0.01;    // drop when > this (0 = off)
  double max_newline_ratio = 0.3;      // newlines per word; drop when > this (0 = off)
};

std::string_view fineweb_check(std::string_view text, const FineWebOptions& options);

}  // namespace kiln::curate
