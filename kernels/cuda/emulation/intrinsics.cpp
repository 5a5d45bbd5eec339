#include "kernels/cuda/emulation/intrinsics.hpp"

namespace kiln::emu::warp {

void combine_ballot(LaneSlot* lanes, unsigned mask, const char*) {
  unsigned bits = 0;
  for (int lane = 0; lane < warpSize; ++lane)
    if ((mask >> lane & 1u) && *static_cast<const int*>(lanes[lane].in)) bits |= 1u << lane;
  for (int lane = 0; lane < warpSize; ++lane)
    if (mask >> lane & 1u) *static_cast<unsigned*>(lanes[lane].out) = bits;
}

void combine_nothing(LaneSlot*, unsigned, const char*) {}

}  // namespace kiln::emu::warp
