#include "trainer/checkpoint/tensor_region.hpp"

#include <gtest/gtest.h>

namespace {

using kiln::checkpoint::CoverageMask;
using kiln::checkpoint::Region;
using kiln::checkpoint::Shape;

TEST(TensorRegion, IntersectionOfBoxes) {
  const Region a{{0, 0}, {4, 6}};
  const Region b{{2, 3}, {4, 6}};
  EXPECT_EQ(kiln::checkpoint::intersect(a, b), (Region{{2, 3}, {2, 3}}));
  EXPECT_EQ(kiln::checkpoint::intersect(a, Region{{4, 0}, {1, 1}}), std::nullopt);  // touching
  EXPECT_EQ(kiln::checkpoint::intersect(a, Region{{1, 1}, {1, 1}}), (Region{{1, 1}, {1, 1}}));
}

TEST(TensorRegion, FitsInside) {
  EXPECT_TRUE(kiln::checkpoint::fits_inside(Region{{2, 0}, {2, 6}}, {4, 6}));
  EXPECT_FALSE(kiln::checkpoint::fits_inside(Region{{3, 0}, {2, 6}}, {4, 6}));
  EXPECT_FALSE(kiln::checkpoint::fits_inside(Region{{0}, {4}}, {4, 6}));
  EXPECT_EQ(kiln::checkpoint::shape_text({4, 6}), "[4, 6]");
  EXPECT_EQ(kiln::checkpoint::element_count({4, 6, 2}), 48u);
}

TEST(TensorRegion, CoverageFindsFirstGap) {
  CoverageMask mask(Region{{10, 20}, {3, 4}});
  mask.mark(Region{{10, 20}, {1, 4}});
  mask.mark(Region{{11, 20}, {2, 2}});
  EXPECT_EQ(mask.first_gap(), (Shape{11, 22}));
  mask.mark(Region{{11, 22}, {2, 2}});
  EXPECT_EQ(mask.first_gap(), std::nullopt);
}

TEST(TensorRegion, CoverageInThreeDimensions) {
  CoverageMask mask(Region{{0, 0, 0}, {2, 3, 4}});
  mask.mark(Region{{0, 0, 0}, {2, 3, 2}});
  EXPECT_EQ(mask.first_gap(), (Shape{0, 0, 2}));
  mask.mark(Region{{0, 0, 2}, {2, 2, 2}});
  EXPECT_EQ(mask.first_gap(), (Shape{0, 2, 2}));
  mask.mark(Region{{0, 2, 2}, {2, 1, 2}});
  EXPECT_EQ(mask.first_gap(), std::nullopt);
}

}  // namespace
