#include "trainer/train/gradient_norm.hpp"

#include <cmath>
#include <vector>

#include "kernels/cuda/backend.hpp"
#include "kernels/ops.hpp"

namespace kiln::train {

namespace {

// Runs `compute` (which writes one f64) where `grads` live and leaves the value in `host`:
// on the CUDA device into one of the backend's scalar slots, read back once for the host
// collective.
template <class Compute>
void scalar_beside(const Tensor& grads, const OwnedTensor& host, Compute&& compute) {
  if (grads.device == Device::Cpu) return compute(host.tensor());
  const Tensor on_device = cuda_backend::active_backend("gradient norm").scalar_slot(0);
  compute(on_device);
  ops::copy(host, on_device);
}

}  // namespace

bool counts_parameter(const model::ParameterInfo& info, const parallel::ProcessGrid& grid) {
  return !info.tied_copy && (grid.tp_rank() == 0 || info.is_sharded());
}

double global_gradient_norm(const model::ParameterStore& params, const optim::AdamW& optimizer, Tensor grads,
                            parallel::ProcessGrid& grid, bool zero) {
  std::vector<ops::FlatRange> counted;
  if (zero || grid.replica_rank() == 0) {  // each replicated piece once (dp x cp hold the same)
    for (const auto& segment : optimizer.segments()) {
      if (!counts_parameter(params.infos()[segment.parameter], grid)) continue;
      counted.push_back({segment.offset, segment.end - segment.begin});
    }
  }
  OwnedTensor sum(DType::F64, {1});
  // An empty range list would mean "all of grads": a rank that counts nothing adds 0.
  if (!counted.empty()) scalar_beside(grads, sum, [&](Tensor total) { ops::sum_of_squares(total, grads, counted); });
  grid.world().all_reduce(sum.tensor());
  return std::sqrt(*sum.tensor().data<double>());
}

bool finite_everywhere(Tensor grads, parallel::ProcessGrid& grid) {
  OwnedTensor broken(DType::F64, {1});
  scalar_beside(grads, broken, [&](Tensor flag) { ops::nonfinite_flag(flag, grads); });
  grid.world().all_reduce(broken.tensor(), parallel::ReduceOp::Max);
  return *broken.tensor().data<double>() == 0.0;
}

}  // namespace kiln::train
