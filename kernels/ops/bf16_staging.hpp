#pragma once
// bf16 storage for the fp32 kernels (DESIGN.md §8 mixed precision): an op called with bf16
// tensors widens them into fp32 scratch, runs its fp32 kernel on the scratch, and rounds the
// outputs back to bf16 once (round to nearest even). Compute and accumulation stay fp32, and
// a bf16 result is exactly the fp32 result of the same (bf16-valued) inputs, rounded once.
//
// The dtype rule every op follows (checked here, see also op_args.hpp):
//   * f64: every floating tensor of the op is f64 (gradient checks); nothing mixes with f64.
//   * f32 / bf16 storage: any activation, weight, activation gradient or saved statistic
//     (mean, rstd, lse, the vocab-parallel row statistics) may be bf16 or f32, mixed freely;
//   * arguments marked `f32_gradient` (parameter gradients dw / db / dgamma / dbeta, the
//     embedding table gradient) must be f32 when any argument is bf16: they accumulate over
//     micro-batches, which bf16 cannot do without losing the small terms;
//   * f16 and non-floating tensors are refused where a floating tensor is expected.
// An op's own results that are not storage (loss_sum, sum_of_squares' total, the finite flag)
// stay f64 whatever the inputs are.
//
// Memory: the scratch is an fp32 copy of each bf16 argument of the op being run, kept per
// thread at its high-water mark. So keep the logits f32 (linear_forward may write f32 logits
// from bf16 x and w, and cross-entropy then stages nothing): staged bf16 logits would cost
// two f32 [N, V] copies.
//
// Usage inside an op (the staged call sees only f32 and takes the ordinary path):
//   Bf16Staging staged(op, {write("y", y), read("x", x), read("w", w)});
//   if (staged.active()) { linear_forward(y, x, w); staged.write_back(); return; }
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "kernels/ops/accumulate.hpp"
#include "kernels/tensor.hpp"

namespace kiln::ops::detail {

enum class Access : std::uint8_t {
  Read,       // an input
  Write,      // an output the op overwrites
  ReadWrite,  // an output the op adds into (Accumulate::Yes, in-place scaling)
};

struct StagedArg {
  const char* name;
  Tensor& tensor;  // rebound to its fp32 scratch when staged
  Access access;
  bool f32_only = false;
};

inline StagedArg read(const char* name, Tensor& tensor) { return {name, tensor, Access::Read}; }
inline StagedArg write(const char* name, Tensor& tensor) { return {name, tensor, Access::Write}; }
inline StagedArg read_write(const char* name, Tensor& tensor) {
  return {name, tensor, Access::ReadWrite};
}
inline StagedArg write_or_add(const char* name, Tensor& tensor, Accumulate accumulate) {
  return {name, tensor, accumulate == Accumulate::Yes ? Access::ReadWrite : Access::Write};
}
// A parameter gradient: added into, and f32 under bf16 storage (never staged).
inline StagedArg f32_gradient(const char* name, Tensor& tensor) {
  return {name, tensor, Access::ReadWrite, true};
}

// Checks the dtype rule above and, when any argument is bf16, rebinds every bf16 argument
// to an fp32 scratch copy (inputs and added-into outputs widened). The scratch is a
// per-thread pool reused across calls, released when the staging goes out of scope.
class Bf16Staging {
 public:
  Bf16Staging(const char* op, std::initializer_list<StagedArg> args);
  ~Bf16Staging();
  Bf16Staging(const Bf16Staging&) = delete;
  Bf16Staging& operator=(const Bf16Staging&) = delete;

  bool active() const { return active_; }
  // Rounds every staged output back into its bf16 tensor. Call after the staged op succeeded;
  // when it throws, the outputs are left as they were.
  void write_back() const;

 private:
  struct Output {
    Tensor bf16;     // the caller's view
    Tensor scratch;  // the fp32 copy the op wrote
  };
  bool active_ = false;
  std::size_t pool_mark_ = 0;
  std::vector<Output> outputs_;
};

// Element-wise conversions between a bf16 view (any strides) and a contiguous f32 buffer of
// the same shape; shared with ops::copy.
void widen_into(float* dst, const Tensor& bf16);
void narrow_into(const Tensor& bf16, const float* src);

}  // namespace kiln::ops::detail
