// Ring attention's merge of a partial result into the running one (kernels/cuda/attention_merge.hpp):
//   out, part [B, T, H, D] f32; lse, part_lse [B, H, T] f32 (strided)
//   lse' = log(exp(lse) + exp(part_lse)); out' = exp(lse - lse') out + exp(part_lse - lse') part
// One warp per (b, t, h) row: lane 0's statistics are the warp's (every lane computes the same
// from the same two loads), the lanes stride over D. Memory-bound and small next to the
// attention it follows; no reduction, so the bits do not depend on the schedule.
#include "kernels/cuda/attention_merge.hpp"

#include <algorithm>

namespace kiln::KILN_CUDA_NS {

namespace {

constexpr int kWarps = 8;

__global__ void __launch_bounds__(kWarps * 32)
    merge_attention_kernel(float* out, float* lse, const float* part, const float* part_lse, MergeRows rows) {
  const std::int64_t count = rows.batch * rows.seq * rows.heads;
  const std::int64_t row = std::int64_t{blockIdx.x} * kWarps + threadIdx.x / 32;
  if (row >= count) return;
  const int lane = static_cast<int>(threadIdx.x % 32);
  const std::int64_t b = row / (rows.seq * rows.heads), t = row / rows.heads % rows.seq, h = row % rows.heads;
  float* running = lse + b * rows.lse_strides[0] + h * rows.lse_strides[1] + t * rows.lse_strides[2];
  const float incoming =
      part_lse[b * rows.part_lse_strides[0] + h * rows.part_lse_strides[1] + t * rows.part_lse_strides[2]];
  const float current = *running;
  if (incoming == -INFINITY) return;
  const float merged = current == -INFINITY ? incoming : fmaxf(current, incoming) + log1pf(expf(-fabsf(current - incoming)));
  const float keep = current == -INFINITY ? 0.0f : expf(current - merged), take = expf(incoming - merged);
  float* o = out + b * rows.out_strides[0] + t * rows.out_strides[1] + h * rows.out_strides[2];
  const float* p = part + b * rows.part_strides[0] + t * rows.part_strides[1] + h * rows.part_strides[2];
  for (std::int64_t d = lane; d < rows.dim; d += 32) o[d] = keep * o[d] + take * p[d];
  __syncwarp();  // every lane read `current` before lane 0 replaces it
  if (lane == 0) *running = merged;
}

}  // namespace

void merge_attention(float* out, float* lse, const float* part, const float* part_lse, const MergeRows& rows,
                     cudaStream_t stream) {
  const std::int64_t count = rows.batch * rows.seq * rows.heads;
  if (count == 0) return;
  if (out == nullptr || lse == nullptr || part == nullptr || part_lse == nullptr)
    cuda_launch::fail_kernel_argument("merge_attention_kernel", "out, lse, part and part_lse must not be null");
  const auto blocks = static_cast<unsigned>((count + kWarps - 1) / kWarps);
  KILN_LAUNCH(merge_attention_kernel, dim3(blocks), dim3(kWarps * 32), 0, stream, out, lse, part, part_lse, rows);
}

}  // namespace kiln::KILN_CUDA_NS
