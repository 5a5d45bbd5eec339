#pragma once
namespace kiln::ops {

// Whether an op adds into its output (residual-stream gradients, micro-batch accumulation)
// or overwrites it. See the conventions in kernels/ops.hpp.
enum class Accumulate : bool { No = false, Yes = true };

}  // namespace kiln::ops
