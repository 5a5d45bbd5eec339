#pragma once
// The CUDA built-in value types the emulated kernels use: dim3, uint3, the 128/64-bit vector
// types with their make_* helpers, and bf16 storage (__nv_bfloat16, __nv_bfloat162). Layout and
// alignment match the CUDA headers so a buffer filled on the host reads the same on either side.
#include <cstdint>

namespace kiln::emu {

struct uint3 {
  unsigned x = 0, y = 0, z = 0;
};

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) int2 {
  int x, y;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};

inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

// bf16 storage: only the bits, as kiln::BFloat16. Arithmetic goes through float explicitly
// (the intrinsics in intrinsics.hpp), which is how kiln kernels are written on the GPU too.
struct alignas(2) __nv_bfloat16 {
  std::uint16_t __x;  // no initialiser: trivial, as CUDA's, so packs may memcpy it
};
struct alignas(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};

}  // namespace kiln::emu
