#include "trainer/checkpoint/tensor_region.hpp"

#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cassert>

namespace kiln::checkpoint {

// Saturates instead of wrapping: a shape read from a damaged file must not wrap to a small
// count that passes the checks comparing it with what is stored.
std::uint64_t element_count(const Shape& shape) {
  std::uint64_t count = 1;
  for (const auto extent : shape) {
    if (extent != 0 && count > std::numeric_limits<std::uint64_t>::max() / extent) {
      return std::numeric_limits<std::uint64_t>::max();
    }
    count *= extent;
  }
  return count;
}

std::string shape_text(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::string region_text(const Region& region) {
  return fmt::format("{} + {}", shape_text(region.offset), shape_text(region.shape));
}

bool fits_inside(const Region& region, const Shape& global_shape) {
  if (region.offset.size() != global_shape.size() || region.shape.size() != global_shape.size()) {
    return false;
  }
  for (std::size_t d = 0; d < global_shape.size(); ++d) {
    if (region.offset[d] > global_shape[d] || region.shape[d] > global_shape[d] - region.offset[d]) {
      return false;
    }
  }
  return true;
}

std::optional<Region> intersect(const Region& a, const Region& b) {
  assert(a.offset.size() == b.offset.size());
  Region overlap{Shape(a.offset.size()), Shape(a.offset.size())};
  for (std::size_t d = 0; d < a.offset.size(); ++d) {
    const std::uint64_t begin = std::max(a.offset[d], b.offset[d]);
    const std::uint64_t end = std::min(a.offset[d] + a.shape[d], b.offset[d] + b.shape[d]);
    if (begin >= end) return std::nullopt;
    overlap.offset[d] = begin;
    overlap.shape[d] = end - begin;
  }
  return overlap;
}

CoverageMask::CoverageMask(Region region)
    : region_(std::move(region)), filled_(element_count(region_.shape), 0) {}

namespace {

// Odometer step over every dimension but the innermost; false once all rows were visited.
bool next_row(Shape& index, const Shape& extent) {
  for (std::size_t d = extent.size() - 1; d-- > 0;) {
    if (++index[d] < extent[d]) return true;
    index[d] = 0;
  }
  return false;
}

}  // namespace

void CoverageMask::mark(const Region& part) {
  const std::size_t rank = region_.shape.size();
  if (rank == 0 || element_count(part.shape) == 0) return;
  const std::uint64_t row_length = part.shape[rank - 1];
  Shape index(rank, 0);
  do {
    std::uint64_t linear = 0;
    for (std::size_t d = 0; d < rank; ++d) {
      linear = linear * region_.shape[d] + (part.offset[d] - region_.offset[d] + index[d]);
    }
    std::fill_n(filled_.begin() + static_cast<std::ptrdiff_t>(linear), row_length, 1);
  } while (next_row(index, part.shape));
}

std::optional<Shape> CoverageMask::first_gap() const {
  const auto gap = std::find(filled_.begin(), filled_.end(), 0);
  if (gap == filled_.end()) return std::nullopt;
  auto linear = static_cast<std::uint64_t>(gap - filled_.begin());
  Shape index(region_.shape.size());
  for (std::size_t d = index.size(); d-- > 0;) {
    index[d] = region_.offset[d] + linear % region_.shape[d];
    linear /= region_.shape[d];
  }
  return index;
}

}  // namespace kiln::checkpoint
