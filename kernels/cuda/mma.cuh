#pragma once
// kiln's tensor-core tile: D = A * B + C with A 16x16 bf16 (row), B 16x8 bf16 (col), C and D
// 16x8 f32, one warp (mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32). On the GPU it is
// the PTX instruction; on the emulated device the warp exchanges its fragment registers by the
// PTX layout (mma_fragment_layout.hpp, emulation/tensor_core.hpp). Also ldmatrix, which loads
// fragments from shared memory in that layout.
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/mma_fragment_layout.hpp"

#include <cstring>
#if KILN_CUDA_EMULATED
#include "kernels/cuda/emulation/tensor_core.hpp"
#endif

namespace kiln::KILN_CUDA_NS {

struct MmaFragmentA {
  unsigned reg[4];  // a0..a7 as bf16 pairs: reg[j] = a_{2j} (low half) | a_{2j+1} (high half)
};
struct MmaFragmentB {
  unsigned reg[2];  // b0..b3 as bf16 pairs
};
struct MmaAccumulator {
  float reg[4];  // c0..c3
};

__device__ __forceinline__ unsigned pack_bf16_pair(__nv_bfloat16 low, __nv_bfloat16 high) {
  unsigned short low_bits, high_bits;
  std::memcpy(&low_bits, &low, 2);
  std::memcpy(&high_bits, &high, 2);
  return static_cast<unsigned>(low_bits) | (static_cast<unsigned>(high_bits) << 16);
}

#if KILN_CUDA_EMULATED
inline void mma_m16n8k16(MmaAccumulator& d, const MmaFragmentA& a, const MmaFragmentB& b, const MmaAccumulator& c,
                         std::source_location site = std::source_location::current()) {
  ::kiln::emu::mma_m16n8k16_bf16(d.reg, a.reg, b.reg, c.reg, site);
}
#else
__device__ __forceinline__ void mma_m16n8k16(MmaAccumulator& d, const MmaFragmentA& a, const MmaFragmentB& b,
                                             const MmaAccumulator& c) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%10, %11, %12, %13};\n"
      : "=f"(d.reg[0]), "=f"(d.reg[1]), "=f"(d.reg[2]), "=f"(d.reg[3])
      : "r"(a.reg[0]), "r"(a.reg[1]), "r"(a.reg[2]), "r"(a.reg[3]), "r"(b.reg[0]), "r"(b.reg[1]), "f"(c.reg[0]),
        "f"(c.reg[1]), "f"(c.reg[2]), "f"(c.reg[3]));
}
#endif

// ldmatrix.sync.aligned.m8n8.x4{.trans}.shared.b16: four 8x8 matrices of 16-bit elements from
// shared memory, one register of each per lane. Lane 8m + r gives the address of row r of
// matrix m (16-byte aligned); reg[m] of lane l is elements 2 (l % 4) and 2 (l % 4) + 1 of row
// l / 4 of matrix m, or with .trans elements (2 (l % 4), l / 4) and (2 (l % 4) + 1, l / 4): the
// B-fragment layout of mma.m16n8k16 for a matrix stored with n (plain) or k (.trans) as rows.
#if KILN_CUDA_EMULATED
inline void load_matrices_x4(unsigned (&reg)[4], const void* row, std::source_location site = std::source_location::current()) {
  ::kiln::emu::ldmatrix_b16(reg, row, 4, false, site);
}
inline void load_matrices_x4_transposed(unsigned (&reg)[4], const void* row,
                                        std::source_location site = std::source_location::current()) {
  ::kiln::emu::ldmatrix_b16(reg, row, 4, true, site);
}
#else
__device__ __forceinline__ void load_matrices_x4(unsigned (&reg)[4], const void* row) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(reg[0]), "=r"(reg[1]), "=r"(reg[2]), "=r"(reg[3])
               : "r"(address)
               : "memory");
}
__device__ __forceinline__ void load_matrices_x4_transposed(unsigned (&reg)[4], const void* row) {
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(reg[0]), "=r"(reg[1]), "=r"(reg[2]), "=r"(reg[3])
               : "r"(address)
               : "memory");
}
#endif

}  // namespace kiln::KILN_CUDA_NS
