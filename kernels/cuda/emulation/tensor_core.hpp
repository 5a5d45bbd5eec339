#pragma once
// Tensor-core instructions on the emulated device. mma.sync is a warp collective over all 32
// lanes: each lane brings its fragment registers, the last to arrive assembles the matrices
// from every lane's registers by the PTX fragment layout (mma_fragment_layout.hpp), multiplies
// in fp32 and hands each lane its part of D. Products of bf16 are exact in fp32; the sums run
// in k order, which the hardware does not promise (its order and internal precision are
// unspecified), so tests compare with a tolerance unless the values make every sum exact.
#include <source_location>

namespace kiln::emu {

// D = A * B + C for one m16n8k16 tile: a[4] and b[2] hold packed bf16 pairs, c and d four f32.
void mma_m16n8k16_bf16(float* d, const unsigned* a, const unsigned* b, const float* c, std::source_location site);

// ldmatrix.sync.aligned.m8n8.x{matrices}{.trans}.shared.b16: a warp collective over all 32
// lanes. Lane 8m + r brings the address of row r (eight 16-bit elements, 16-byte aligned) of
// matrix m; every lane gets one 32-bit register per matrix: word (lane % 4) of row lane / 4,
// or with .trans the elements (2 (lane % 4), lane / 4) and (2 (lane % 4) + 1, lane / 4), the
// lower row in the low half (PTX ISA, "Warp-level matrix load instruction: ldmatrix").
void ldmatrix_b16(unsigned* regs, const void* row_address, int matrices, bool transposed, std::source_location site);

}  // namespace kiln::emu
