#include "kernels/cuda/emulation/tensor_core.hpp"

#include <cstdint>
#include <cstring>

#include "kernels/cuda/emulation/execution.hpp"
#include "kernels/cuda/mma_fragment_layout.hpp"
#include "kernels/tensor.hpp"
#include "trainer/core/error.hpp"

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

std::uint16_t element_at(const void* row, int column) {
  std::uint16_t value;
  std::memcpy(&value, static_cast<const unsigned char*>(row) + 2 * column, sizeof value);
  return value;
}

// LaneSlot.arg: the number of matrices, | 8 for .trans; the same in every lane.
void combine_ldmatrix(LaneSlot* lanes, unsigned, const char*) {
  for (int lane = 1; lane < warpSize; ++lane)
    if (lanes[lane].arg != lanes[0].arg) kiln::fail("ldmatrix: the lanes of a warp disagree on .num or .trans");
  const int matrices = lanes[0].arg & 7;
  const bool transposed = (lanes[0].arg & 8) != 0;
  for (int lane = 0; lane < warpSize; ++lane) {
    auto* regs = static_cast<unsigned*>(lanes[lane].out);
    const int group = lane / 4, member = lane % 4;
    for (int m = 0; m < matrices; ++m) {
      const LaneSlot* rows = lanes + 8 * m;  // row r of matrix m comes from lane 8m + r
      const std::uint16_t low = transposed ? element_at(rows[2 * member].in, group)
                                           : element_at(rows[group].in, 2 * member);
      const std::uint16_t high = transposed ? element_at(rows[2 * member + 1].in, group)
                                            : element_at(rows[group].in, 2 * member + 1);
      regs[m] = static_cast<unsigned>(low) | (static_cast<unsigned>(high) << 16);
    }
  }
}

}  // namespace

void ldmatrix_b16(unsigned* regs, const void* row_address, int matrices, bool transposed, std::source_location site) {
  if (matrices != 1 && matrices != 2 && matrices != 4) fail_in_kernel("ldmatrix loads 1, 2 or 4 matrices", site);
  // Lanes past the last matrix's rows bring addresses the instruction ignores (any value).
  const bool provides_a_row = static_cast<int>(lane_id()) < 8 * matrices;
  if (provides_a_row && reinterpret_cast<std::uintptr_t>(row_address) % 16 != 0)
    fail_in_kernel("ldmatrix: a row address must be 16-byte aligned", site);
  unsigned result[4] = {};
  const LaneSlot slot{provides_a_row ? row_address : nullptr, result, matrices | (transposed ? 8 : 0), warpSize};
  // .aligned: every lane of the warp executes the same ldmatrix; a missing lane is an error.
  warp_collective(0xffffffffu, "ldmatrix.sync.m8n8", combine_ldmatrix, slot, site);
  for (int m = 0; m < matrices; ++m) regs[m] = result[m];
}

void mma_m16n8k16_bf16(float* d, const unsigned* a, const unsigned* b, const float* c, std::source_location site) {
  const MmaOperands operands{a, b, c};
  float result[4];
  // .aligned: every lane of the warp executes the same mma; a missing lane is an error.
  warp_collective(0xffffffffu, "mma.sync.m16n8k16", combine_mma, LaneSlot{&operands, result, 0, warpSize}, site);
  for (int i = 0; i < 4; ++i) d[i] = result[i];
}

}  // namespace kiln::emu
