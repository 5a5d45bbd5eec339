#include "trainer/train/gradient_norm.hpp"

#include <cmath>
#include <vector>

#include "kernels/ops.hpp"

namespace kiln::train {

bool counts_parameter(const model::ParameterInfo& info, const parallel::ProcessGrid& grid) {
  return !info.tied_copy && (grid.tp_rank() == 0 || info.is_sharded());
}

double global_gradient_norm(const model::ParameterStore& params, const optim::AdamW& optimizer, Tensor grads,
                            parallel::ProcessGrid& grid, bool zero) {
  std::vector<ops::FlatRange> counted;
  if (zero || grid.dp_rank() == 0) {
    for (const auto& segment : optimizer.segments()) {
      if (!counts_parameter(params.infos()[segment.parameter], grid)) continue;
      counted.push_back({segment.offset, segment.end - segment.begin});
    }
  }
  OwnedTensor sum(DType::F64, {1});
  // An empty range list would mean "all of grads": a rank that counts nothing adds 0.
  if (!counted.empty()) ops::sum_of_squares(sum.tensor(), grads, counted);
  grid.world().all_reduce(sum.tensor());
  return std::sqrt(*sum.tensor().data<double>());
}

bool finite_everywhere(Tensor grads, parallel::ProcessGrid& grid) {
  OwnedTensor broken(DType::F64, {1});
  ops::nonfinite_flag(broken.tensor(), grads);
  grid.world().all_reduce(broken.tensor(), parallel::ReduceOp::Max);
  return *broken.tensor().data<double>() == 0.0;
}

}  // namespace kiln::train
