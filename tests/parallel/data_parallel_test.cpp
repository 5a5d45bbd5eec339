// Data-parallel buckets on a single process: the bucket plan, the overlapped schedule's rules,
// and the model's "gradients are final" hook.
#include "parallel/data_parallel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "tests/model/model_testing.hpp"
#include "trainer/core/error.hpp"
#include "trainer/model/transformer.hpp"

namespace kiln::parallel {
namespace {

using Buckets = std::vector<GradientBucket>;

TEST(GradientBuckets, CutOnlyAtReadyOffsetsAndMergeFromTheEnd) {
  const std::vector<std::int64_t> offsets{0, 10, 20, 30};  // four groups of 10 (then 5 of head)
  // 4-byte elements, 25 elements per bucket: the head (5) merges with the last block (10) and
  // the block before it (10); the first two groups make the next bucket.
  EXPECT_EQ(plan_gradient_buckets(offsets, 35, 4, 100, 100), (Buckets{{0, 10}, {10, 35}}));
  // One group per bucket when no two fit together.
  EXPECT_EQ(plan_gradient_buckets(offsets, 35, 4, 60, 60), (Buckets{{0, 10}, {10, 20}, {20, 35}}));
  // Everything in one bucket when it fits.
  EXPECT_EQ(plan_gradient_buckets(offsets, 35, 4, 1000, 1000), (Buckets{{0, 35}}));
}

TEST(GradientBuckets, ABucketTakesNoMoreGroupsOnceItHoldsTheMinimum) {
  const std::vector<std::int64_t> offsets{0, 10, 20, 30};
  // 40 bytes = 10 elements: the 5-element head is below it and takes the last block; every
  // other group is a bucket of its own although two would fit in 100 bytes.
  EXPECT_EQ(plan_gradient_buckets(offsets, 35, 4, 100, 40), (Buckets{{0, 10}, {10, 20}, {20, 35}}));
  EXPECT_EQ(plan_gradient_buckets(offsets, 35, 4, 100, 4), (Buckets{{0, 10}, {10, 20}, {20, 30}, {30, 35}}));
}

TEST(GradientBuckets, AGroupLargerThanABucketIsCutFromItsStart) {
  EXPECT_EQ(plan_gradient_buckets({}, 10, 4, 16), (Buckets{{0, 4}, {4, 8}, {8, 10}}));
  const std::vector<std::int64_t> offsets{0, 3};
  EXPECT_EQ(plan_gradient_buckets(offsets, 10, 4, 16), (Buckets{{0, 3}, {3, 7}, {7, 10}}));
}

TEST(GradientBuckets, OffsetsOutsideTheBufferAreRefused) {
  const std::vector<std::int64_t> offsets{0, 50};
  EXPECT_THROW(plan_gradient_buckets(offsets, 35, 4, 100), Error);
}

TEST(DataParallelSchedule, RefusesHooksOutsideAStepAndASecondStart) {
  auto world = world_communicator();
  std::vector<float> grads(8, 1.0f);
  DataParallel dp(*world, 8, DType::F32, false);
  EXPECT_FALSE(dp.in_progress());
  EXPECT_THROW(dp.gradients_final_from(0), Error);
  EXPECT_THROW(dp.finish(), Error);
  dp.start(Tensor::of(grads.data(), {8}));
  EXPECT_TRUE(dp.in_progress());
  EXPECT_THROW(dp.start(Tensor::of(grads.data(), {8})), Error);
  dp.gradients_final_from(4);
  EXPECT_EQ(dp.finish().numel(), 8);
  EXPECT_FALSE(dp.in_progress());
  std::vector<float> short_grads(4, 1.0f);
  EXPECT_THROW(dp.start(Tensor::of(short_grads.data(), {4})), Error);
}

// The hook's promise: when it reports offset o, no gradient at >= o changes afterwards. Checked
// by snapshotting the gradients at every report and comparing with the gradients at the end.
TEST(GradientsFinalHook, ReportsSuffixesThatNoLaterWorkChanges) {
  for (const bool tied : {true, false}) {
    model::ModelConfig config = model::testing::tiny_llama();
    config.n_layers = 3;
    config.tie_embeddings = tied;
    model::Transformer transformer(config.resolved());
    model::testing::randomize_parameters(transformer, 5, 0.2);
    const auto batch = model::testing::packed_batch(transformer.config().vocab_size, 9);
    const Tensor grads = transformer.parameters().grads();
    std::vector<std::int64_t> reported;
    std::vector<std::vector<double>> snapshots;
    transformer.zero_grads();
    transformer.forward(batch.view());
    transformer.backward(0.1);  // an earlier micro-batch: no hook, gradients accumulate
    transformer.forward(batch.view());
    transformer.backward(0.1, [&](std::int64_t offset) {
      reported.push_back(offset);
      snapshots.push_back(model::testing::to_vector(grads.narrow(0, offset, grads.numel() - offset)));
    });
    std::vector<std::int64_t> expected = transformer.gradient_final_offsets();
    std::reverse(expected.begin(), expected.end());
    EXPECT_EQ(reported, expected) << (tied ? "tied" : "untied");
    ASSERT_EQ(reported.back(), 0);
    for (std::size_t i = 0; i < reported.size(); ++i) {
      const auto at_end = model::testing::to_vector(grads.narrow(0, reported[i], grads.numel() - reported[i]));
      EXPECT_EQ(snapshots[i], at_end) << "offset " << reported[i] << (tied ? " tied" : " untied");
    }
  }
}

}  // namespace
}  // namespace kiln::parallel
