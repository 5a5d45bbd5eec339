// 1F1B schedule on a toy pipeline: stage s multiplies by (s + 2); the last stage's "loss" is
// the sum of its output, so the gradient reaching the first stage is the product of all
// factors. Checks values, order, and that no more than pipeline_slots() micro-batches are in
// flight on any stage.
#include "parallel/pipeline.hpp"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "parallel/process_grid.hpp"

namespace {

using kiln::OwnedTensor;
using kiln::Tensor;

kiln::parallel::Communicator& world() {
  static auto communicator = kiln::parallel::world_communicator();
  return *communicator;
}

void run_toy_pipeline(int micro_batches) {
  auto& pipeline = world();
  const int stages = pipeline.size(), stage = pipeline.rank();
  const double factor = stage + 2.0;
  constexpr std::int64_t kWidth = 3;
  const int slots = kiln::parallel::pipeline_slots(stages, stage, micro_batches);
  std::vector<OwnedTensor> outputs, grads;
  for (int i = 0; i < slots; ++i) {
    outputs.emplace_back(kiln::DType::F64, kiln::Shape{kWidth});
    grads.emplace_back(kiln::DType::F64, kiln::Shape{kWidth});
  }
  std::vector<int> forward_order, backward_order;
  std::map<int, int> slot_owner;  // slot -> micro-batch in flight
  int in_flight = 0, most_in_flight = 0;
  std::vector<double> first_stage_grads;

  kiln::parallel::PipelineStage toy;
  toy.activation_shape = {kWidth};
  toy.dtype = kiln::DType::F64;
  toy.forward = [&](int micro, int slot, Tensor input) {
    EXPECT_EQ(slot_owner.count(slot), 0u) << "slot " << slot << " reused while in flight";
    slot_owner[slot] = micro;
    forward_order.push_back(micro);
    most_in_flight = std::max(most_in_flight, ++in_flight);
    double* out = outputs[static_cast<std::size_t>(slot)].data<double>();
    for (int j = 0; j < kWidth; ++j) {
      const double x = input.defined() ? input.data<double>()[j] : micro + 0.5 * j;
      out[j] = factor * x;
    }
    return stage == stages - 1 ? Tensor{} : outputs[static_cast<std::size_t>(slot)].tensor();
  };
  toy.backward = [&](int micro, int slot, Tensor grad_output) {
    EXPECT_EQ(slot_owner.at(slot), micro);
    slot_owner.erase(slot);
    backward_order.push_back(micro);
    --in_flight;
    double* grad = grads[static_cast<std::size_t>(slot)].data<double>();
    for (int j = 0; j < kWidth; ++j) grad[j] = factor * (grad_output.defined() ? grad_output.data<double>()[j] : 1.0);
    if (stage == 0) first_stage_grads.push_back(grad[0]);
    return stage == 0 ? Tensor{} : grads[static_cast<std::size_t>(slot)].tensor();
  };
  kiln::parallel::run_one_forward_one_backward(pipeline, micro_batches, toy);

  std::vector<int> in_order(static_cast<std::size_t>(micro_batches));
  for (int m = 0; m < micro_batches; ++m) in_order[static_cast<std::size_t>(m)] = m;
  EXPECT_EQ(forward_order, in_order);
  EXPECT_EQ(backward_order, in_order);
  EXPECT_LE(most_in_flight, slots);
  EXPECT_EQ(most_in_flight, std::min(stages - stage, micro_batches));
  if (stage == 0) {
    double product = 1.0;
    for (int s = 0; s < stages; ++s) product *= s + 2.0;
    for (double grad : first_stage_grads) EXPECT_DOUBLE_EQ(grad, product);
  }
}

TEST(Pipeline, OneForwardOneBackwardWithManyMicroBatches) { run_toy_pipeline(7); }
TEST(Pipeline, FewerMicroBatchesThanStages) { run_toy_pipeline(1); }
TEST(Pipeline, AsManyMicroBatchesAsStages) { run_toy_pipeline(world().size()); }

}  // namespace
