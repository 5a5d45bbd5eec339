#pragma once
// The Split pre-tokenizer's cut of a piece of text, as `tokenizers` makes it.
//
// The regex's matches (empty ones included, see Regex::for_each_match_with_empty) and the
// non-empty gaps between them cover the text as a list of segments, each flagged "match" or
// not; invert flips every flag. The behavior then decides which segment boundaries stay:
//   Isolated            every segment is a piece
//   Removed             matched segments are dropped, the others are pieces
//   MergedWithPrevious  a match joins the piece before it (unless that one was a match too)
//   MergedWithNext      a match joins the piece after it (unless that one is a match too)
//   Contiguous          runs of segments with the same flag form one piece
// Empty segments still count: an empty match between two gaps keeps them apart. Empty pieces
// are produced and left for the caller to drop, as `tokenizers` drops them.
#include <cstddef>
#include <optional>
#include <string_view>

#include "data/tokenizer/regex.hpp"

namespace kiln::tok {

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// The names tokenizer.json uses ("Isolated", ...); nullopt for any other.
std::optional<SplitBehavior> split_behavior_named(std::string_view name);
std::string_view name_of(SplitBehavior behavior);

// Calls emit(begin, end) for every piece of `text` (byte offsets, possibly empty), in order.
template <class Emit>
void split_pieces(const Regex& regex, std::string_view text, SplitBehavior behavior, bool invert, Emit&& emit) {
  std::size_t piece_begin = 0;
  std::size_t piece_end = 0;
  bool have_piece = false;
  bool previous_is_match = false;

  const auto add_segment = [&](std::size_t begin, std::size_t end, bool matched) {
    const bool is_match = matched != invert;
    if (behavior == SplitBehavior::Removed) {
      if (!is_match) emit(begin, end);
      return;
    }
    bool joins_previous = false;
    switch (behavior) {
      case SplitBehavior::MergedWithPrevious: joins_previous = is_match && !previous_is_match; break;
      case SplitBehavior::MergedWithNext: joins_previous = previous_is_match && !is_match; break;
      case SplitBehavior::Contiguous: joins_previous = is_match == previous_is_match; break;
      default: break;
    }
    previous_is_match = is_match;
    if (have_piece && joins_previous) {
      piece_end = end;
      return;
    }
    if (have_piece) emit(piece_begin, piece_end);
    piece_begin = begin;
    piece_end = end;
    have_piece = true;
  };

  std::size_t gap_begin = 0;
  regex.for_each_match_with_empty(text, [&](std::size_t begin, std::size_t end) {
    if (gap_begin != begin) add_segment(gap_begin, begin, false);
    add_segment(begin, end, true);
    gap_begin = end;
  });
  if (gap_begin != text.size()) add_segment(gap_begin, text.size(), false);
  if (have_piece) emit(piece_begin, piece_end);
}

}  // namespace kiln::tok
