#include "kernels/ops/rope.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "kernels/cpu/rope.hpp"
#include "kernels/ops/bf16_staging.hpp"
#include "kernels/ops/op_args.hpp"

namespace kiln::ops {

using namespace detail;

std::vector<double> rope_inv_freq(std::int64_t head_dim, const RopeConfig& config) {
  if (head_dim <= 0 || head_dim % 2 != 0)
    fail("ops::rope: head_dim {} must be positive and even", head_dim);
  if (config.theta <= 0) fail("ops::rope: rope_theta {} must be positive", config.theta);
  if (config.llama3_scaling &&
      (config.factor <= 0 || config.high_freq_factor <= config.low_freq_factor ||
       config.low_freq_factor <= 0 || config.original_max_position_embeddings <= 0))
    fail(
        "ops::rope: llama3 scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor "
        "and original_max_position_embeddings > 0 (got {}, {}, {}, {})",
        config.factor, config.low_freq_factor, config.high_freq_factor,
        config.original_max_position_embeddings);
  return cpu::rope_inv_freq(head_dim, config.theta, config.llama3_scaling, config.factor,
                            config.low_freq_factor, config.high_freq_factor,
                            static_cast<double>(config.original_max_position_embeddings));
}

namespace {

void rope_apply(const char* op, Tensor y, Tensor x, Tensor positions, const RopeConfig& config,
                int direction) {
  if (on_cuda(op, {{"y", y}, {"x", x}, {"positions", positions}})) {
    require_defined(op, {{"y", y}, {"x", x}, {"positions", positions}});
    if (x.rank() != 4) fail("ops::{}: `x` is {}; expected [B, T, H, Dh]", op, x.str());
    check_shape(op, "y", y, x.shape);
    check_cuda_storage(op, {{"y", y}, {"x", x}});
    if (x.size(3) > 1 && x.stride(3) != 1) fail("ops::{}: `x` is {}; the head dim must have unit stride", op, x.str());
    if (positions.numel() != x.size(0) * x.size(1))
      fail("ops::{}: `positions` is {}; expected {} elements", op, positions.str(), x.size(0) * x.size(1));
    const std::vector<double> inv_freq = rope_inv_freq(x.size(3), config);
    return cuda_backend_for(op).rope(y, x, positions, inv_freq.data(), direction);
  }
  const Bf16Staging staged(op, {write("y", y), read("x", x)});
  if (staged.active()) {
    rope_apply(op, y, x, positions, config, direction);
    return staged.write_back();
  }
  const std::initializer_list<Arg> all = {{"y", y}, {"x", x}, {"positions", positions}};
  require_defined(op, all);
  require_cpu(op, all);
  const DType dtype = float_dtype(op, {{"y", y}, {"x", x}});
  if (x.rank() != 4) fail("ops::{}: `x` is {}; expected [B, T, H, Dh]", op, x.str());
  check_shape(op, "y", y, x.shape);
  const std::vector<double> inv_freq = rope_inv_freq(x.size(3), config);
  const std::vector<std::int64_t> pos = indices(op, "positions", positions, x.size(0) * x.size(1));
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::rope_rotate<T>(heads<T>(op, "y", y), const_heads<T>(op, "x", x), pos.data(),
                        inv_freq.data(), direction);
  });
}

}  // namespace

void rope_forward(Tensor y, Tensor x, Tensor positions, const RopeConfig& config) {
  rope_apply("rope_forward", y, x, positions, config, +1);
}

void rope_backward(Tensor dx, Tensor dy, Tensor positions, const RopeConfig& config) {
  rope_apply("rope_backward", dx, dy, positions, config, -1);
}

}  // namespace kiln::ops
