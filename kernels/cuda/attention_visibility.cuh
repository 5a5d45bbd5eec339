#pragma once
// Which keys a query sees, for the attention kernels (attention.cu, flash_attention.cu): a
// contiguous range, since its document is a run of equal ids and the causal limit a prefix.
// A warp finds a run with ballots over 32 ids at a time.
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/warp_reduce.cuh"

namespace kiln::KILN_CUDA_NS::attention_detail {

__device__ __forceinline__ std::int64_t smaller(std::int64_t a, std::int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ std::int64_t larger(std::int64_t a, std::int64_t b) { return a > b ? a : b; }
__device__ __forceinline__ int lane_id() { return static_cast<int>(threadIdx.x % 32); }
__device__ __forceinline__ int warp_id() { return static_cast<int>(threadIdx.x / 32); }

// ---- which keys a query sees ----------------------------------------------------------------

struct KeyRange {
  std::int64_t lo = 0, hi = 0;  // [lo, hi)
};

// First index of the run of equal ids that holds `position` (warp-collective).
__device__ inline std::int64_t run_start(const std::int32_t* doc, std::int64_t position) {
  const std::int32_t id = doc[position];
  for (std::int64_t end = position; end > 0; end -= 32) {  // ids end - 1 down to end - 32
    const std::int64_t t = end - 1 - lane_id();
    const unsigned boundary = __ballot_sync(kFullWarp, t < 0 || doc[t] != id);
    if (boundary != 0) return end - __ffs(static_cast<int>(boundary)) + 1;  // just after the nearest
  }
  return 0;
}

// One past the last index of the run that holds `position` (warp-collective).
__device__ inline std::int64_t run_end(const std::int32_t* doc, std::int64_t position, std::int64_t tk) {
  const std::int32_t id = doc[position];
  for (std::int64_t begin = position + 1; begin < tk; begin += 32) {
    const std::int64_t t = begin + lane_id();
    const unsigned boundary = __ballot_sync(kFullWarp, t >= tk || doc[t] != id);
    if (boundary != 0) return begin + __ffs(static_cast<int>(boundary)) - 1;
  }
  return tk;
}

// The keys the query at key position `position` attends to (warp-collective).
__device__ inline KeyRange visible_keys(const std::int32_t* doc, std::int64_t position, std::int64_t tk, bool causal) {
  KeyRange range{0, tk};
  if (doc != nullptr) {
    range.lo = run_start(doc, position);
    if (!causal) range.hi = run_end(doc, position, tk);
  }
  if (causal) range.hi = position + 1;  // inside its run: a run ends after its own position
  return range;
}

// The union of the ranges in shared memory (empty ranges ignored).
__device__ inline KeyRange union_of(const std::int64_t* lo, const std::int64_t* hi, int count) {
  KeyRange all{INT64_MAX, 0};
  for (int s = 0; s < count; ++s) {
    if (hi[s] <= lo[s]) continue;
    all.lo = smaller(all.lo, lo[s]);
    all.hi = larger(all.hi, hi[s]);
  }
  return all;
}

// The run bounds [start, end) of each key of the tile k0 .. k0 + n - 1, lane = key
// (warp-collective): query position p sees key j exactly when start_j <= p < end_j (and, when
// causal, j <= p). One ballot scan for the tile's first key's start and its last key's end;
// inside the tile the boundaries come from one ballot.
__device__ inline KeyRange key_run(const std::int32_t* doc, std::int64_t k0, std::int64_t n, std::int64_t tk) {
  if (doc == nullptr) return {0, tk};
  const int lane = lane_id();
  const std::int64_t first_start = run_start(doc, k0), last_end = run_end(doc, k0 + n - 1, tk);
  const std::int64_t key = k0 + lane;
  // Bit l: a run starts at key l (l > 0) / a run ends after key l (l < n - 1).
  const unsigned starts = __ballot_sync(kFullWarp, lane > 0 && lane < n && doc[key] != doc[key - 1]);
  const unsigned ends = __ballot_sync(kFullWarp, lane < n - 1 && doc[key + 1] != doc[key]);
  const unsigned at_or_below = lane == 31 ? kFullWarp : (2u << lane) - 1u;
  const unsigned starts_here = starts & at_or_below, ends_here = ends & ~((1u << lane) - 1u);
  KeyRange run;
  run.lo = starts_here != 0 ? k0 + 31 - __clz(static_cast<int>(starts_here)) : first_start;
  run.hi = ends_here != 0 ? k0 + __ffs(static_cast<int>(ends_here)) : last_end;
  return run;
}

}  // namespace kiln::KILN_CUDA_NS::attention_detail
