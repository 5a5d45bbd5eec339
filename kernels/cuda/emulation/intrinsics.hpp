#pragma once
// The CUDA device functions kiln kernels call, for the emulated device: barriers, warp
// shuffles and votes, atomics, bf16 conversions and the fast-math intrinsics.
//
// The fast-math intrinsics (__expf, __fdividef, rsqrtf) are computed exactly here; on the GPU
// they are approximations within a few ulp, which the kernel tests' tolerances allow for.
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <math.h>  // fmaxf, expf, sqrtf ... in the global namespace, as CUDA has them
#include <source_location>
#include <type_traits>

#include "kernels/cuda/emulation/execution.hpp"
#include "kernels/cuda/emulation/types.hpp"
#include "kernels/tensor.hpp"

namespace kiln::emu {

// ---- barriers ------------------------------------------------------------------------------
inline void __syncthreads(std::source_location site = std::source_location::current()) {
  block_barrier(0, "__syncthreads", site);
}
inline int __syncthreads_count(int predicate, std::source_location site = std::source_location::current()) {
  return block_barrier(predicate, "__syncthreads_count", site);
}
inline int __syncthreads_and(int predicate, std::source_location site = std::source_location::current()) {
  return block_barrier(predicate != 0, "__syncthreads_and", site) ==
         static_cast<int>(blockDim.x * blockDim.y * blockDim.z);
}
inline int __syncthreads_or(int predicate, std::source_location site = std::source_location::current()) {
  return block_barrier(predicate != 0, "__syncthreads_or", site) > 0;
}

// ---- warp collectives ----------------------------------------------------------------------
namespace warp {

enum class Shuffle { Index, Up, Down, Xor };

inline bool valid_width(int width) { return width >= 1 && width <= warpSize && std::has_single_bit(static_cast<unsigned>(width)); }

// The lane whose value `lane` receives, per the CUDA programming guide's shuffle rules: the
// warp splits into groups of `width` lanes; a source outside the caller's group (beyond it for
// up/down/xor) leaves the caller's own value.
inline int shuffle_source(Shuffle kind, int lane, int arg, int width) {
  const int group = lane / width * width;
  switch (kind) {
    case Shuffle::Index: return group + (arg & (width - 1));
    case Shuffle::Up: return lane - group >= arg ? lane - arg : lane;
    case Shuffle::Down: return lane - group + arg < width ? lane + arg : lane;
    case Shuffle::Xor: {
      const int source = lane ^ arg;
      return source >= 0 && source < group + width ? source : lane;
    }
  }
  return lane;
}

template <class T, Shuffle kind>
void combine_shuffle(LaneSlot* lanes, unsigned mask, const char* what) {
  for (int lane = 0; lane < warpSize; ++lane) {
    if (!(mask >> lane & 1u)) continue;
    const LaneSlot& slot = lanes[lane];
    if (!valid_width(slot.width))
      kiln::fail("{} from lane {} has width {}; it must be a power of two up to 32", what, lane, slot.width);
    const int source = shuffle_source(kind, lane, slot.arg, slot.width);
    if (!(mask >> source & 1u))
      kiln::fail("{} on lane {} reads lane {}, which is not in the mask 0x{:08x}", what, lane, source, mask);
    std::memcpy(slot.out, lanes[source].in, sizeof(T));
  }
}

template <class T, Shuffle kind>
T shuffle(unsigned mask, T value, int arg, int width, const char* what, std::source_location site) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp shuffles move at most 8 bytes");
  T result{};
  warp_collective(mask, what, combine_shuffle<T, kind>, LaneSlot{&value, &result, arg, width}, site);
  return result;
}

void combine_ballot(LaneSlot* lanes, unsigned mask, const char* what);
void combine_nothing(LaneSlot* lanes, unsigned mask, const char* what);

inline unsigned ballot(unsigned mask, int predicate, const char* what, std::source_location site) {
  const int mine = predicate != 0;
  unsigned result = 0;
  warp_collective(mask, what, combine_ballot, LaneSlot{&mine, &result, 0, warpSize}, site);
  return result;
}

}  // namespace warp

template <class T>
T __shfl_sync(unsigned mask, T value, int source_lane, int width = warpSize,
              std::source_location site = std::source_location::current()) {
  return warp::shuffle<T, warp::Shuffle::Index>(mask, value, source_lane, width, "__shfl_sync", site);
}
template <class T>
T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = warpSize,
                 std::source_location site = std::source_location::current()) {
  return warp::shuffle<T, warp::Shuffle::Up>(mask, value, static_cast<int>(delta), width, "__shfl_up_sync", site);
}
template <class T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = warpSize,
                   std::source_location site = std::source_location::current()) {
  return warp::shuffle<T, warp::Shuffle::Down>(mask, value, static_cast<int>(delta), width, "__shfl_down_sync", site);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = warpSize,
                  std::source_location site = std::source_location::current()) {
  return warp::shuffle<T, warp::Shuffle::Xor>(mask, value, lane_mask, width, "__shfl_xor_sync", site);
}

inline unsigned __ballot_sync(unsigned mask, int predicate, std::source_location site = std::source_location::current()) {
  return warp::ballot(mask, predicate, "__ballot_sync", site);
}
inline int __any_sync(unsigned mask, int predicate, std::source_location site = std::source_location::current()) {
  return warp::ballot(mask, predicate, "__any_sync", site) != 0;
}
inline int __all_sync(unsigned mask, int predicate, std::source_location site = std::source_location::current()) {
  return warp::ballot(mask, predicate, "__all_sync", site) == mask;
}
inline void __syncwarp(unsigned mask = 0xffffffffu, std::source_location site = std::source_location::current()) {
  warp_collective(mask, "__syncwarp", warp::combine_nothing, LaneSlot{}, site);
}
inline unsigned __activemask(std::source_location site = std::source_location::current()) { return active_mask(site); }

// ---- bit operations (lane masks from ballots) -------------------------------------------
// __ffs: 1-based position of the lowest set bit, 0 for none; __clz: leading zeros (32 for 0);
// __popc: set bits. The GPU's single instructions, with the same results.
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1; }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
inline int __popc(unsigned x) { return std::popcount(x); }

// ---- atomics -------------------------------------------------------------------------------
// The fibers of a launch share one OS thread and switch only at synchronisation points, so
// these are atomic among the CUDA threads by construction; atomic_ref keeps them atomic should
// two host threads ever launch over the same memory.
template <class T>
T atomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value);
}
template <class T>
T atomicSub(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_sub(value);
}
template <class T>
T atomicExch(T* address, T value) {
  return std::atomic_ref<T>(*address).exchange(value);
}
template <class T>
T atomicCAS(T* address, T compare, T value) {
  static_assert(std::is_integral_v<T>, "atomicCAS takes integer words");
  std::atomic_ref<T>(*address).compare_exchange_strong(compare, value);
  return compare;  // the old value either way
}
template <class T>
T atomicMax(T* address, T value) {
  static_assert(std::is_integral_v<T>, "atomicMax takes integers (use a CAS loop for floats, as on the GPU)");
  std::atomic_ref<T> word(*address);
  T old = word.load();
  while (old < value && !word.compare_exchange_weak(old, value)) {}
  return old;
}
template <class T>
T atomicMin(T* address, T value) {
  static_assert(std::is_integral_v<T>, "atomicMin takes integers (use a CAS loop for floats, as on the GPU)");
  std::atomic_ref<T> word(*address);
  T old = word.load();
  while (old > value && !word.compare_exchange_weak(old, value)) {}
  return old;
}

// ---- bf16 ----------------------------------------------------------------------------------
// The same round-to-nearest-even as kiln::to_bfloat16 (it is that function), so the emulated
// kernels round exactly like the CPU backend and the GPU's cvt.rn.bf16.f32.
inline __nv_bfloat16 __float2bfloat16_rn(float value) { return {kiln::to_bfloat16(value).bits}; }
inline __nv_bfloat16 __float2bfloat16(float value) { return __float2bfloat16_rn(value); }
inline float __bfloat162float(__nv_bfloat16 value) { return kiln::to_float(kiln::BFloat16{value.__x}); }
inline __nv_bfloat162 __floats2bfloat162_rn(float low, float high) {
  return {__float2bfloat16_rn(low), __float2bfloat16_rn(high)};
}
inline __nv_bfloat162 __float22bfloat162_rn(float2 value) { return __floats2bfloat162_rn(value.x, value.y); }
inline float2 __bfloat1622float2(__nv_bfloat162 value) { return {__bfloat162float(value.x), __bfloat162float(value.y)}; }
inline float __low2float(__nv_bfloat162 value) { return __bfloat162float(value.x); }
inline float __high2float(__nv_bfloat162 value) { return __bfloat162float(value.y); }

// ---- math ----------------------------------------------------------------------------------
// glibc declares ::__expf and ::__logf itself, so these two are reached through the
// __expf / __logf macros of cuda_compat.cuh.
inline float exp_intrinsic(float x) { return std::exp(x); }
inline float log_intrinsic(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __frsqrt_rn(float x) { return 1.0f / std::sqrt(x); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
template <class T>
T __ldg(const T* address) {
  return *address;
}

}  // namespace kiln::emu
