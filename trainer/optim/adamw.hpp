#pragma once
// AdamW over a model's flat parameter buffer (DESIGN.md §4, §6): fp32 moments beside the
// fp32 parameters, decoupled weight decay on matrices only (the registry's flag), the global
// gradient norm for clipping, and a refusal to step on non-finite gradients (§1: a NaN never
// reaches the weights).
#include <cstdint>

#include "kernels/ops.hpp"
#include "kernels/tensor.hpp"
#include "trainer/model/parameters.hpp"

namespace kiln::optim {

struct AdamWConfig {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
};

class AdamW {
 public:
  AdamW(const model::ParameterStore& params, AdamWConfig config);

  // sqrt(sum of squared gradients) over every parameter, each counted once.
  static double gradient_norm(const model::ParameterStore& params);
  // The factor that brings `norm` down to `max_norm` (1 when within it or clipping is off).
  static double clip_factor(double norm, double max_norm);

  // One update of every parameter with gradients scaled by grad_scale. Returns false, and
  // changes nothing, when any gradient is NaN or infinite.
  bool step(const model::ParameterStore& params, double lr, double grad_scale);

  std::int64_t steps_taken() const { return steps_taken_; }
  void set_steps_taken(std::int64_t steps) { steps_taken_ = steps; }
  // The first and second moments of parameter `index` (its stored shape).
  Tensor exp_avg(const model::ParameterStore& params, std::size_t index) const;
  Tensor exp_avg_sq(const model::ParameterStore& params, std::size_t index) const;

 private:
  AdamWConfig config_;
  OwnedTensor exp_avg_;     // [numel], the parameter buffer's layout
  OwnedTensor exp_avg_sq_;  // [numel]
  std::int64_t steps_taken_ = 0;
};

}  // namespace kiln::optim
