#include "kernels/cuda/emulation/tensor_core.hpp"

#include "kernels/cuda/emulation/execution.hpp"
#include "kernels/cuda/mma_fragment_layout.hpp"
#include "kernels/tensor.hpp"

namespace kiln::emu {
namespace {

struct MmaOperands {
  const unsigned* a;
  const unsigned* b;
  const float* c;
};

float bf16_half(unsigned word, int i) {
  return kiln::to_float(kiln::BFloat16{static_cast<std::uint16_t>(i & 1 ? word >> 16 : word & 0xFFFFu)});
}

void combine_mma(LaneSlot* lanes, unsigned, const char*) {
  float a[16][16], b[16][8], c[16][8];
  for (int lane = 0; lane < warpSize; ++lane) {
    const auto& in = *static_cast<const MmaOperands*>(lanes[lane].in);
    for (int i = 0; i < 8; ++i) {
      const auto at = mma_layout::a_position(lane, i);
      a[at.row][at.col] = bf16_half(in.a[i / 2], i);
    }
    for (int i = 0; i < 4; ++i) {
      const auto at = mma_layout::b_position(lane, i);
      b[at.row][at.col] = bf16_half(in.b[i / 2], i);
    }
    for (int i = 0; i < 4; ++i) {
      const auto at = mma_layout::c_position(lane, i);
      c[at.row][at.col] = in.c[i];
    }
  }
  for (int lane = 0; lane < warpSize; ++lane) {
    auto* d = static_cast<float*>(lanes[lane].out);
    for (int i = 0; i < 4; ++i) {
      const auto at = mma_layout::c_position(lane, i);
      float sum = c[at.row][at.col];
      for (int k = 0; k < 16; ++k) sum += a[at.row][k] * b[k][at.col];
      d[i] = sum;
    }
  }
}

}  // namespace

void mma_m16n8k16_bf16(float* d, const unsigned* a, const unsigned* b, const float* c, std::source_location site) {
  const MmaOperands operands{a, b, c};
  float result[4];
  // .aligned: every lane of the warp executes the same mma; a missing lane is an error.
  warp_collective(0xffffffffu, "mma.sync.m16n8k16", combine_mma, LaneSlot{&operands, result, 0, warpSize}, site);
  for (int i = 0; i < 4; ++i) d[i] = result[i];
}

}  // namespace kiln::emu
