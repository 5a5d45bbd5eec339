#pragma once
// Boxes inside a global tensor: where a stored piece sits, what a reader asks for, and their
// overlap. Checkpoint resharding is this arithmetic: a rank under a new layout asks for its
// region and gathers it from every stored piece that overlaps it (DESIGN.md §9).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kiln::checkpoint {

using Shape = std::vector<std::uint64_t>;

std::uint64_t element_count(const Shape& shape);
std::string shape_text(const Shape& shape);  // "[4, 8]"

// A row-major box: element `offset + i` of the global tensor for every i < shape.
struct Region {
  Shape offset;
  Shape shape;
  bool operator==(const Region&) const = default;
};

std::string region_text(const Region& region);  // "[2, 0] + [4, 8]"

// True when region lies inside a tensor of global_shape (same rank, no element outside).
bool fits_inside(const Region& region, const Shape& global_shape);

// The overlap of two boxes of the same rank, or nullopt when they share no element.
std::optional<Region> intersect(const Region& a, const Region& b);

// Which elements of a region have been filled in, so a gather can prove it left no hole.
class CoverageMask {
 public:
  explicit CoverageMask(Region region);
  // Marks part (which must lie inside the region) as filled.
  void mark(const Region& part);
  // The global index of the first element not yet marked, if any.
  std::optional<Shape> first_gap() const;

 private:
  Region region_;
  std::vector<std::uint8_t> filled_;
};

}  // namespace kiln::checkpoint
