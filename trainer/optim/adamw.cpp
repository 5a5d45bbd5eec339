#include "trainer/optim/adamw.hpp"

#include <cmath>

namespace kiln::optim {

namespace {

Tensor slice_like(const OwnedTensor& flat, const model::ParameterInfo& info) {
  return flat.tensor().narrow(0, info.offset, info.numel()).reshape(info.shape);
}

}  // namespace

AdamW::AdamW(const model::ParameterStore& params, AdamWConfig config)
    : config_(config),
      exp_avg_(params.dtype(), {params.numel()}),
      exp_avg_sq_(params.dtype(), {params.numel()}) {}

double AdamW::gradient_norm(const model::ParameterStore& params) {
  return std::sqrt(ops::sum_of_squares(params.grads()));
}

double AdamW::clip_factor(double norm, double max_norm) {
  if (max_norm <= 0.0 || norm <= max_norm) return 1.0;
  return max_norm / (norm + 1e-6);
}

bool AdamW::step(const model::ParameterStore& params, double lr, double grad_scale) {
  if (!ops::all_finite(params.grads())) return false;
  ++steps_taken_;
  ops::AdamWStep update;
  update.lr = lr;
  update.beta1 = config_.beta1;
  update.beta2 = config_.beta2;
  update.eps = config_.eps;
  update.weight_decay = config_.weight_decay;
  update.step = steps_taken_;
  update.grad_scale = grad_scale;
  for (std::size_t index = 0; index < params.size(); ++index) {
    const auto& info = params.infos()[index];
    ops::adamw_step(params.value(index), params.grad(index), exp_avg(params, index),
                    exp_avg_sq(params, index), update, info.weight_decay);
  }
  return true;
}

Tensor AdamW::exp_avg(const model::ParameterStore& params, std::size_t index) const {
  return slice_like(exp_avg_, params.infos()[index]);
}

Tensor AdamW::exp_avg_sq(const model::ParameterStore& params, std::size_t index) const {
  return slice_like(exp_avg_sq_, params.infos()[index]);
}

}  // namespace kiln::optim
