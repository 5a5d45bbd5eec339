#pragma once
// Multi-tensor AdamW and the global gradient sum of squares on the device.
//
// adamw_step_segments: one launch over every segment of a device-resident table. Segment k
// updates master[param_offset, +length) (f32) from grads/m/v[state_offset, +length) (f32),
// with decoupled weight decay when its flag is set, with exactly the arithmetic of
// kernels/cpu/adamw.cpp in f32 (the same f32 constants, derived on the host in f64), and
// writes the updated master into the working copy working[param_offset, +length) (bf16,
// rounded once, or f32; may be null) in the same pass.
//
// sum_of_squares: total [1] f64 = sum of x^2 over the ranges of x (f32), accumulated in f64
// like ops::sum_of_squares, in two launches: a fixed grid of kSumOfSquaresPartials blocks
// writes one partial each (fixed element-to-thread assignment, fixed shuffle tree), then one
// warp adds the partials in index order. The bits depend only on the ranges, never on the
// schedule. non_finite [1] i32 = 1 when the total is NaN or infinite (some x was), else 0.
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

struct AdamWDeviceSegment {
  std::int64_t param_offset = 0;
  std::int64_t state_offset = 0;
  std::int64_t length = 0;
  std::int32_t weight_decay = 0;  // non-zero: decay this segment (matrices, not norms/biases)
  std::int32_t unused = 0;
};

// The hyper-parameters of one step, as ops::AdamWStep.
struct AdamWHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.0;
  std::int64_t step = 1;  // t, 1-based
  double grad_scale = 1.0;
};

// Checks a segment table on the host before it is uploaded (the kernel cannot): every range
// inside its buffer, lengths >= 0, and no two parameter or state ranges overlapping.
void validate_adamw_segments(const AdamWDeviceSegment* host_segments, int count, std::int64_t param_size,
                             std::int64_t state_size);

// segments: a device array of `count` entries, validated with validate_adamw_segments.
void adamw_step_segments(float* master, __nv_bfloat16* working, const float* grads, float* m, float* v,
                         const AdamWDeviceSegment* segments, int count, const AdamWHyper& hyper,
                         cudaStream_t stream);
void adamw_step_segments(float* master, float* working, const float* grads, float* m, float* v,
                         const AdamWDeviceSegment* segments, int count, const AdamWHyper& hyper,
                         cudaStream_t stream);

struct DeviceFlatRange {
  std::int64_t offset = 0;
  std::int64_t length = 0;
};

inline constexpr int kSumOfSquaresPartials = 256;  // size of the f64 workspace, in elements

// ranges: a device array of `count` entries inside x (the caller's check, as for segments).
// partials: device workspace of kSumOfSquaresPartials doubles.
void sum_of_squares(double* total, std::int32_t* non_finite, const float* x, const DeviceFlatRange* ranges, int count,
                    double* partials, cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
