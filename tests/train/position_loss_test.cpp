// Loss by position (`kiln eval --by-position`): each bucket's loss equals the one found by
// scoring the same windows one sequence at a time (SequenceScorer: the model's logits,
// log-softmax in double on the host) and averaging by position by hand; the buckets add up
// to the overall loss; with packed documents the positions restart at every document.
#include <gtest/gtest.h>

#include <span>

#include "data/loader/token_loader.hpp"
#include "tests/dataset/test_datasets.hpp"
#include "trainer/train/evaluate.hpp"
#include "trainer/train/sequence_scorer.hpp"

namespace kiln::train {
namespace {

constexpr std::int64_t kVocab = 64;
constexpr std::int64_t kSeqLen = 32;

model::ModelConfig tiny_llama() {
  model::ModelConfig c = model::llama_config();
  c.vocab_size = kVocab;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.d_ff = 48;
  c.max_seq_len = 2 * kSeqLen;
  c.tie_embeddings = false;
  c.rope.theta = 10000.0;
  return c.resolved();
}

struct Sums {
  double loss = 0.0;
  std::int64_t tokens = 0;
};

// The windows evaluate() read (the same loader, the same number of batches), each cut into
// the sequences attention sees (one per row, or one per document when packed), scored alone.
std::vector<Sums> brute_force_buckets(model::Transformer& model, std::shared_ptr<const data::TokenDataset> dataset,
                                      const EvalOptions& options, std::int64_t batches) {
  data::TokenLoaderOptions loader_options;
  loader_options.seq_len = static_cast<std::uint64_t>(options.seq_len);
  loader_options.global_batch = static_cast<std::uint64_t>(options.rows);
  loader_options.packed = options.packed;
  data::TokenLoader loader(std::move(dataset), loader_options);
  std::vector<Sums> buckets(static_cast<std::size_t>((options.seq_len + options.position_bucket - 1) / options.position_bucket));
  SequenceScorer scorer(model);
  const std::size_t window = static_cast<std::size_t>(options.seq_len) + 1;
  for (std::int64_t b = 0; b < batches; ++b) {
    const data::Batch batch = loader.next_batch();
    for (std::size_t row = 0; row < batch.rows; ++row) {
      std::vector<std::size_t> starts = {0};
      if (options.packed) {
        starts.assign(batch.segment_starts.begin() + batch.segment_offsets[row],
                      batch.segment_starts.begin() + batch.segment_offsets[row + 1]);
      }
      starts.push_back(static_cast<std::size_t>(options.seq_len));
      for (std::size_t s = 0; s + 1 < starts.size(); ++s) {
        // Inputs [start, end) of the window and the target after each: tokens [start, end].
        const std::span<const std::uint32_t> ids(batch.tokens.data() + row * window + starts[s], starts[s + 1] - starts[s] + 1);
        const SequenceScore score = scorer.score(ids, /*keep_logprobs=*/true);
        for (std::size_t p = 0; p < score.logprobs.size(); ++p) {
          if (!batch.loss_mask.empty() && batch.loss_mask[row * window + starts[s] + p + 1] == 0) continue;
          Sums& bucket = buckets[p / static_cast<std::size_t>(options.position_bucket)];
          bucket.loss -= score.logprobs[p];
          ++bucket.tokens;
        }
      }
    }
  }
  return buckets;
}

struct Case {
  bool packed = false;
  std::int64_t bucket = 8;
  std::size_t longest_document = 200;
  bool masks = false;
};

EvalResult evaluate_and_compare(const Case& c) {
  kiln::testing::TempDir dir;
  kiln::testing::write_corpus(dir / "val.h5",
                              kiln::testing::make_corpus(40, kVocab, 11, 1, c.longest_document, c.masks), "val");
  const auto dataset = std::make_shared<const data::TokenDataset>(data::TokenDataset::open(dir / "val.h5"));
  model::Transformer model(tiny_llama());
  model.init_weights(5);
  EvalOptions options;
  options.seq_len = kSeqLen;
  options.rows = 4;
  options.packed = c.packed;
  options.position_bucket = c.bucket;
  const EvalResult result = evaluate(model, dataset, options);

  const auto expected = brute_force_buckets(model, dataset, options, result.batches);
  EXPECT_EQ(result.by_position.size(), expected.size());
  double loss_sum = 0.0;
  std::int64_t tokens = 0;
  for (std::size_t b = 0; b < result.by_position.size(); ++b) {
    const PositionBucket& bucket = result.by_position[b];
    EXPECT_EQ(bucket.first, static_cast<std::int64_t>(b) * c.bucket);
    EXPECT_EQ(bucket.end, std::min(bucket.first + c.bucket, kSeqLen));
    EXPECT_EQ(bucket.tokens, expected[b].tokens) << "bucket " << b;
    EXPECT_NEAR(bucket.loss_sum, expected[b].loss, 1e-4 * (1.0 + expected[b].loss)) << "bucket " << b;
    loss_sum += bucket.loss_sum;
    tokens += bucket.tokens;
  }
  // The token-weighted mean of the buckets is the overall loss.
  EXPECT_EQ(tokens, result.tokens);
  EXPECT_NEAR(loss_sum / static_cast<double>(tokens), result.loss, 1e-6 * result.loss);
  return result;
}

TEST(LossByPosition, WindowPositionsMatchScoringEachWindowAlone) {
  const auto result = evaluate_and_compare({.packed = false, .bucket = 8});
  ASSERT_EQ(result.by_position.size(), 4u);
  // Unpacked, every window contributes one target to every position.
  for (const auto& bucket : result.by_position) EXPECT_EQ(bucket.tokens, result.tokens / 4);
}

TEST(LossByPosition, PackedPositionsRestartAtEveryDocument) {
  // Documents of at most 20 tokens: no target is predicted from position 20 or later.
  const auto result = evaluate_and_compare({.packed = true, .bucket = 8, .longest_document = 20});
  ASSERT_EQ(result.by_position.size(), 4u);
  EXPECT_GT(result.by_position[0].tokens, result.by_position[1].tokens);
  EXPECT_EQ(result.by_position[3].tokens, 0);
  EXPECT_EQ(result.by_position[3].loss(), 0.0);
}

TEST(LossByPosition, MaskedTargetsAreLeftOutOfEveryBucket) {
  const auto result = evaluate_and_compare({.packed = true, .bucket = 8, .longest_document = 60, .masks = true});
  EXPECT_GT(result.tokens, 0);
}

TEST(LossByPosition, ALastBucketMayBeShorter) {
  const auto result = evaluate_and_compare({.packed = false, .bucket = 12});
  ASSERT_EQ(result.by_position.size(), 3u);
  EXPECT_EQ(result.by_position[2].end - result.by_position[2].first, 8);
}

TEST(LossByPosition, NotAskedForNoBuckets) {
  kiln::testing::TempDir dir;
  kiln::testing::write_corpus(dir / "val.h5", kiln::testing::make_corpus(10, kVocab, 3), "val");
  const auto dataset = std::make_shared<const data::TokenDataset>(data::TokenDataset::open(dir / "val.h5"));
  model::Transformer model(tiny_llama());
  model.init_weights(5);
  EvalOptions options;
  options.seq_len = kSeqLen;
  options.rows = 2;
  EXPECT_TRUE(evaluate(model, dataset, options).by_position.empty());
}

}  // namespace
}  // namespace kiln::train
