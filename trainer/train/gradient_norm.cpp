#include "trainer/train/gradient_norm.hpp"

#include <cmath>

#include "kernels/ops.hpp"

namespace kiln::train {

bool counts_parameter(const model::ParameterInfo& info, const parallel::ProcessGrid& grid) {
  return !info.tied_copy && (grid.tp_rank() == 0 || info.is_sharded());
}

double global_gradient_norm(const model::ParameterStore& params, const optim::AdamW& optimizer, Tensor grads,
                            parallel::ProcessGrid& grid, bool zero) {
  double sum = 0.0;
  if (zero || grid.dp_rank() == 0) {
    for (const auto& segment : optimizer.segments()) {
      if (!counts_parameter(params.infos()[segment.parameter], grid)) continue;
      sum += ops::sum_of_squares(grads.narrow(0, segment.offset, segment.end - segment.begin));
    }
  }
  grid.world().all_reduce(Tensor::of(&sum, {1}));
  return std::sqrt(sum);
}

bool finite_everywhere(Tensor grads, parallel::ProcessGrid& grid) {
  double broken = ops::all_finite(grads) ? 0.0 : 1.0;
  grid.world().all_reduce(Tensor::of(&broken, {1}), parallel::ReduceOp::Max);
  return broken == 0.0;
}

}  // namespace kiln::train
