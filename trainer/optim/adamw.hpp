#pragma once
// AdamW over a model's flat parameter buffer (DESIGN.md §4, §6): fp32 moments beside the fp32
// parameters, decoupled weight decay on matrices only (the registry's flag).
//
// The optimizer owns a contiguous range [begin, end) of the flat buffer: all of it normally,
// this rank's 1/dp share under ZeRO-1. The range cuts the registry's parameters into
// segments (a parameter, and the element range of it that falls inside); the moments are
// stored segment after segment, exactly as long as the range.
//
// Master weights: the optimizer updates fp32 masters of its owned range. With bf16 parameter
// values (mixed precision) the masters are its own f32 buffer, and every step also rounds the
// updated masters into the store's bf16 working copy of the range (under ZeRO, the data-
// parallel all-gather then moves the working copy). With f32 (or f64) values the masters are
// the store's values themselves: a second copy would hold the same numbers, so fp32 training
// is exactly what it was and costs no extra memory.
#include <cstdint>
#include <vector>

#include "kernels/memory/arena.hpp"
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
  // One piece of one parameter inside the owned range: elements [begin, end) of the
  // parameter's local (row-major) storage, at `offset` into the range.
  struct Segment {
    std::size_t parameter = 0;
    std::int64_t begin = 0;
    std::int64_t end = 0;
    std::int64_t offset = 0;
  };

  // end < 0 means the whole buffer.
  AdamW(const model::ParameterStore& params, AdamWConfig config, std::int64_t begin = 0, std::int64_t end = -1);

  // The factor that brings `norm` down to `max_norm` (1 when within it or clipping is off).
  static double clip_factor(double norm, double max_norm);

  // One update of the owned range with `grads` [end - begin] (the owned range's gradients,
  // scaled by grad_scale). The caller has checked that they are finite on every rank.
  void step(const model::ParameterStore& params, Tensor grads, double lr, double grad_scale);

  // True when the masters are the optimizer's own f32 buffer (bf16 values), false when they
  // are the parameter store's values.
  bool separate_masters() const { return masters_.defined(); }
  // The fp32 masters of the owned range, flat [end - begin].
  Tensor masters(const model::ParameterStore& params) const;
  // The masters of one segment, flat [end - begin].
  Tensor master(const model::ParameterStore& params, const Segment& segment) const;
  // After the store's values were initialised: masters = those values (widened). A no-op when
  // the masters are the values. (Loading a checkpoint sets both: see checkpoint/model_state.)
  void masters_from_working_copy(const model::ParameterStore& params);

  std::int64_t begin() const { return begin_; }
  std::int64_t end() const { return end_; }
  std::int64_t steps_taken() const { return steps_taken_; }
  void set_steps_taken(std::int64_t steps) { steps_taken_ = steps; }
  const std::vector<Segment>& segments() const { return segments_; }
  // The moments of one segment, flat [end - begin].
  Tensor exp_avg(const Segment& segment) const;
  Tensor exp_avg_sq(const Segment& segment) const;

 private:
  AdamWConfig config_;
  std::int64_t begin_ = 0;
  std::int64_t end_ = 0;
  std::vector<Segment> segments_;
  memory::Arena state_;  // on the parameters' device
  Tensor masters_;     // f32 [end - begin] with bf16 values, else undefined (the store's values)
  Tensor exp_avg_;     // [end - begin]
  Tensor exp_avg_sq_;  // [end - begin]
  std::int64_t steps_taken_ = 0;
};

}  // namespace kiln::optim
