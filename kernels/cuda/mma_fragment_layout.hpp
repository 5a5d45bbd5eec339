#pragma once
// Where each register element of an mma.m16n8k16 (.bf16 inputs, .f32 accumulator) fragment
// sits in its matrix, per the PTX ISA's figures "MMA .m16n8k16 fragment layout" for A (.bf16),
// B (.bf16) and C/D (.f32). With group = lane / 4 and member = lane % 4:
//   A 16x16 row-major, a0..a7 (two per .b32 register, the lower index in the low half):
//     row = group (+8 for a2, a3, a6, a7),  col = member * 2 + (i & 1) (+8 for a4..a7)
//   B 16x8 (k x n), b0..b3:  row = member * 2 + (i & 1) (+8 for b2, b3),  col = group
//   C/D 16x8 f32, c0..c3:    row = group (+8 for c2, c3),  col = member * 2 + (i & 1)
// Plain constexpr C++17 so kernels (nvcc), the emulator and the tests share it.
namespace kiln::mma_layout {

struct Position {
  int row, col;
};

constexpr Position a_position(int lane, int i) {
  const int group = lane >> 2, member = lane & 3;
  const bool lower_rows = i < 2 || (i >= 4 && i < 6);
  return {lower_rows ? group : group + 8, member * 2 + (i & 1) + (i >= 4 ? 8 : 0)};
}

constexpr Position b_position(int lane, int i) {
  const int group = lane >> 2, member = lane & 3;
  return {member * 2 + (i & 1) + (i >= 2 ? 8 : 0), group};
}

constexpr Position c_position(int lane, int i) {
  const int group = lane >> 2, member = lane & 3;
  return {i < 2 ? group : group + 8, member * 2 + (i & 1)};
}

}  // namespace kiln::mma_layout
