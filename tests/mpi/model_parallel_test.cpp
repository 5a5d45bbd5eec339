// Tensor- and pipeline-parallel model against the serial model, under mpirun with 2 or 4
// ranks (ctest mpi.ranks2 / mpi.ranks4); skipped in a single process. With sequence
// parallelism too: then the stages exchange [B, T/tp, C] chunks and the norms' gradients are
// summed over tp after the backward, as the trainer does.
//
// Every rank builds the serial model too (same weights), runs it on the same two
// micro-batches (loss mask, packed documents) and compares its own part of the parallel run:
// the loss (last stage; identical on every tp rank) and every local gradient against the
// matching slice of the serial gradient. Layouts are taken from the world size: a (tp, pp)
// layout runs as world / (tp * pp) independent replicas, and is skipped when it does not fit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "parallel/communicator.hpp"
#include "parallel/mpi_environment.hpp"
#include "tests/model/model_testing.hpp"
#include "trainer/model/init.hpp"

namespace kiln::model {
namespace {

using parallel::Communicator;
using parallel::ReduceOp;
using testing::OwnedBatch;

Communicator& world() {
  static const std::unique_ptr<Communicator> communicator = parallel::world_communicator();
  return *communicator;
}

struct Layout {
  int tp = 1, pp = 1;
  bool sequence_parallel = false;
};

// This rank's place in one replica of a layout, and its groups.
struct Grid {
  int tp_rank = 0, pp_rank = 0;
  std::unique_ptr<Communicator> tp, pp;
  std::unique_ptr<Communicator> ends;  // first + last stage of this tp column (tied embedding)
};

Grid make_grid(const Layout& layout) {
  const int per_replica = layout.tp * layout.pp;
  const int rank = world().rank(), replica = rank / per_replica, local = rank % per_replica;
  Grid grid;
  grid.tp_rank = local % layout.tp;
  grid.pp_rank = local / layout.tp;
  grid.tp =
      parallel::split_communicator(world(), replica * layout.pp + grid.pp_rank, grid.tp_rank, "tp");
  grid.pp =
      parallel::split_communicator(world(), replica * layout.tp + grid.tp_rank, grid.pp_rank, "pp");
  const bool end = grid.pp_rank == 0 || grid.pp_rank == layout.pp - 1;
  grid.ends = parallel::split_communicator(
      world(), end ? replica * layout.tp + grid.tp_rank : world().size() + rank, grid.pp_rank,
      "embedding");
  return grid;
}

// Five layers: pipeline stages of unequal size for pp = 2 (3 + 2) and pp = 4 (1 + 2 + 1 + 1).
// Vocabulary 37 padded to a multiple of 16 * tp: with tp = 4 the last shard is all padding.
ModelConfig gpt2(bool tied) {
  ModelConfig c = testing::tiny_gpt2();
  c.n_layers = 5;
  c.vocab_pad_multiple = 16;
  c.tie_embeddings = tied;
  return c.resolved();
}

ModelConfig llama(bool tied) {  // GQA: 4 query heads, 2 kv heads
  ModelConfig c = testing::tiny_llama();
  c.n_layers = 5;
  c.vocab_pad_multiple = 16;
  c.tie_embeddings = tied;
  return c.resolved();
}

std::vector<ModelConfig> all_configs() {
  return {gpt2(true), gpt2(false), llama(false), llama(true)};
}

std::string describe(const ModelConfig& c, DType dtype, const Layout& layout) {
  return std::string(family_name(c.family)) + (c.tie_embeddings ? " tied " : " untied ") +
         std::string(dtype_name(dtype)) + " tp " + std::to_string(layout.tp) + " pp " +
         std::to_string(layout.pp) + (layout.sequence_parallel ? " sp" : "") + " rank " +
         std::to_string(world().rank());
}

// True when x is the same on every rank of the group (bit for bit).
bool identical_over(Communicator& group, const Tensor& x) {
  OwnedTensor high(DType::F64, x.shape), low(DType::F64, x.shape);
  ops::copy(high, x);
  ops::copy(low, x);
  ops::scale(low, -1.0);
  group.all_reduce(high, ReduceOp::Max);
  group.all_reduce(low, ReduceOp::Max);
  const std::vector<double> mine = testing::to_vector(x), max = testing::to_vector(high),
                            min = testing::to_vector(low);
  for (std::size_t i = 0; i < mine.size(); ++i)
    if (max[i] != mine[i] || -min[i] != mine[i]) return false;
  return true;
}

double norm(const std::vector<double>& x) {
  double sum = 0;
  for (double v : x) sum += v * v;
  return std::sqrt(sum);
}

// ||got - want|| / ||want||, with ||want|| floored at a thousandth of the whole gradient's
// norm: the key bias's gradient is zero in exact arithmetic (softmax ignores a shift shared by
// all keys of a query), so both sides are rounding noise there.
double relative_difference(const std::vector<double>& got, const std::vector<double>& want,
                           double floor) {
  std::vector<double> diff(want.size());
  for (std::size_t i = 0; i < want.size(); ++i) diff[i] = got[i] - want[i];
  return norm(diff) / std::max(norm(want), floor);
}

constexpr int kMicroBatches = 2;

// Runs one layout on this rank's part of it and checks it against the serial model.
void check_layout(const ModelConfig& serial_config, DType dtype, const Layout& layout) {
  const std::string what = describe(serial_config, dtype, layout);
  Grid grid = make_grid(layout);
  ModelConfig config = serial_config;
  config.tp = layout.tp;  // vocabulary padded for this tp
  config = config.resolved();
  ParallelPlacement placement;
  placement.tp = grid.tp.get();
  placement.tp_rank = grid.tp_rank;
  placement.tp_size = layout.tp;
  placement.pp_rank = grid.pp_rank;
  placement.pp_size = layout.pp;
  placement.sequence_parallel = layout.sequence_parallel;
  const double loss_tolerance = dtype == DType::F32 ? 1e-6 : 1e-12;
  const double grad_tolerance = dtype == DType::F32 ? 1e-5 : 1e-10;

  // Same micro-batches everywhere: packed documents and a loss mask, then a plain one.
  std::vector<OwnedBatch> batches;
  batches.push_back(testing::packed_batch(config.vocab_size, 101));
  batches.push_back(testing::packed_batch(config.vocab_size, 102, true, false));

  // The serial reference, on every rank: init from the seed, then every parameter randomised
  // (non-trivial norms and biases) so that every path carries gradient.
  Transformer serial(serial_config, dtype);
  serial.init_weights(77);
  Transformer model(config, dtype, placement);
  model.init_weights(77);
  const ParameterStore& store = model.parameters();
  // (EXPECT, never ASSERT, before the communication below: a rank that returned early would
  // leave the others waiting.)
  for (const ParameterInfo& info : store.infos())
    EXPECT_EQ(
        testing::to_vector(testing::real_part(store.value(info.name), info)),
        testing::to_vector(testing::serial_region(serial.parameters().value(info.name), info)))
        << what << ": initial " << info.name;
  testing::randomize_parameters(serial, 78, 0.3);
  for (const ParameterInfo& info : store.infos())
    ops::copy(testing::real_part(store.value(info.name), info),
              testing::serial_region(serial.parameters().value(info.name), info));

  serial.zero_grads();
  std::vector<ops::LossSum> serial_losses;
  std::int64_t counted = 0;
  for (const OwnedBatch& batch : batches) {
    serial_losses.push_back(serial.forward(batch.view()));
    counted += serial_losses.back().count;
  }
  const double grad_scale = 1.0 / static_cast<double>(counted);
  for (const OwnedBatch& batch : batches) {
    serial.forward(batch.view());
    serial.backward(grad_scale);
  }

  // The parallel run: all forwards, then all backwards (GPipe order; every micro-batch keeps
  // its slot), activations and their gradients sent between neighbouring stages.
  model.set_pipeline_slots(kMicroBatches);
  model.zero_grads();
  const bool first = grid.pp_rank == 0, last = grid.pp_rank == layout.pp - 1;
  const std::int64_t B = batches[0].tokens.size(0), T = batches[0].tokens.size(1);
  const Shape activation_shape = model.stage_activation_shape(B, T);
  EXPECT_EQ(activation_shape, (Shape{B, layout.sequence_parallel ? T / layout.tp : T, config.d_model}))
      << what << ": what the stages exchange";
  std::vector<OwnedTensor> inputs, output_grads;
  for (int mb = 0; mb < kMicroBatches; ++mb) {
    inputs.emplace_back(dtype, activation_shape);
    output_grads.emplace_back(dtype, activation_shape);
  }
  std::vector<ops::LossSum> losses(kMicroBatches);
  for (int mb = 0; mb < kMicroBatches; ++mb) {
    if (!first) grid.pp->recv(inputs[mb], grid.pp_rank - 1);
    const Transformer::StageForward out =
        model.forward_stage(mb, batches[mb].view(), first ? Tensor{} : inputs[mb].tensor());
    if (out.loss_sum.defined()) losses[mb] = ops::read_loss_sum(out.loss_sum);
    if (!last) {
      EXPECT_EQ(out.output.shape, activation_shape) << what << ": stage output";
      grid.pp->send(out.output, grid.pp_rank + 1);
    }
  }
  for (int mb = 0; mb < kMicroBatches; ++mb) {
    if (!last) grid.pp->recv(output_grads[mb], grid.pp_rank + 1);
    const Tensor input_grad =
        model.backward_stage(mb, last ? Tensor{} : output_grads[mb].tensor(), grad_scale);
    if (!first) grid.pp->send(input_grad, grid.pp_rank - 1);
  }
  // What the trainer does for a tied embedding split over the first and last stage.
  if (config.tie_embeddings && layout.pp > 1 && (first || last))
    grid.ends->all_reduce(store.grad("embed.weight"));
  // And what it does after the backward under sequence parallelism (a no-op otherwise).
  model.complete_sequence_parallel_gradients(store.grads());

  if (last) {
    for (int mb = 0; mb < kMicroBatches; ++mb) {
      EXPECT_EQ(losses[mb].count, serial_losses[mb].count) << what;
      EXPECT_NEAR(losses[mb].sum, serial_losses[mb].sum, loss_tolerance * serial_losses[mb].sum)
          << what << " micro-batch " << mb;
      double sum = losses[mb].sum;
      EXPECT_TRUE(identical_over(*grid.tp, Tensor::of(&sum, {1})))
          << what << ": the loss differs between tp ranks";
    }
  } else {
    for (const ops::LossSum& loss : losses) EXPECT_EQ(loss.count, 0) << what;
  }

  const double floor = 1e-3 * norm(testing::to_vector(serial.parameters().grads()));
  for (const ParameterInfo& info : store.infos()) {
    const Tensor grad = store.grad(info.name);
    bool padding_is_zero = true;
    for (double x :
         testing::to_vector(grad.narrow(0, info.valid_rows, info.shape[0] - info.valid_rows)))
      padding_is_zero = padding_is_zero && x == 0.0;
    EXPECT_TRUE(padding_is_zero) << what << ": gradient in the padding of " << info.name;
    if (info.valid_rows == 0) continue;  // a shard of padding rows only
    const std::vector<double> want =
        testing::to_vector(testing::serial_region(serial.parameters().grad(info.name), info));
    const std::vector<double> got = testing::to_vector(testing::real_part(grad, info));
    EXPECT_LE(relative_difference(got, want, floor), grad_tolerance)
        << what << ": gradient of " << info.name;
    // Replicated parameters: the same gradient on every tp rank, so the trainer counts them once.
    if (info.split == TpSplit::replicated) {
      EXPECT_TRUE(identical_over(*grid.tp, grad))
          << what << ": " << info.name << " differs over tp";
    }
  }
}

// A failure on one rank must not leave the others waiting in a receive: end the job.
void run_everywhere(const Layout& layout) {
  if (world().size() < 2) GTEST_SKIP() << "needs mpirun with 2 or more ranks";
  if (world().size() % (layout.tp * layout.pp) != 0)
    GTEST_SKIP() << "tp " << layout.tp << " x pp " << layout.pp << " does not fit "
                 << world().size() << " ranks";
  for (const ModelConfig& config : all_configs()) {
    if (config.n_kv_heads % layout.tp != 0) continue;  // llama's 2 kv heads: tp <= 2
    for (const DType dtype : {DType::F32, DType::F64}) {
      try {
        check_layout(config, dtype, layout);
      } catch (const std::exception& error) {
        std::fprintf(stderr, "rank %d: %s\n", world().rank(), error.what());
        parallel::MpiEnvironment::instance().abort(1);
      }
    }
  }
}

TEST(ModelParallel, TensorParallelTwoMatchesSerial) { run_everywhere({2, 1}); }
TEST(ModelParallel, TensorParallelFourMatchesSerial) { run_everywhere({4, 1}); }
TEST(ModelParallel, PipelineTwoStagesMatchesSerial) { run_everywhere({1, 2}); }
TEST(ModelParallel, PipelineFourStagesMatchesSerial) { run_everywhere({1, 4}); }
TEST(ModelParallel, TensorTimesPipelineMatchesSerial) { run_everywhere({2, 2}); }
TEST(ModelParallel, SequenceParallelTwoMatchesSerial) { run_everywhere({2, 1, true}); }
TEST(ModelParallel, SequenceParallelFourMatchesSerial) { run_everywhere({4, 1, true}); }
TEST(ModelParallel, SequenceParallelTimesPipelineMatchesSerial) { run_everywhere({2, 2, true}); }

}  // namespace
}  // namespace kiln::model
