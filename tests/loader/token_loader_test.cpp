#include "data/loader/token_loader.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "data/loader/epoch_permutation.hpp"
#include "tests/core/error_testing.hpp"
#include "tests/dataset/test_datasets.hpp"
#include "trainer/core/error.hpp"
#include "trainer/train/micro_batch.hpp"

namespace {

using kiln::testing::error_of;

using kiln::data::Batch;
using kiln::data::EpochPermutation;
using kiln::data::LoaderState;
using kiln::data::TokenDataset;
using kiln::data::TokenLoader;
using kiln::data::TokenLoaderOptions;
using kiln::testing::Corpus;
using kiln::testing::make_corpus;
using kiln::testing::TempDir;

std::vector<std::uint64_t> permutation_of(std::uint64_t n, std::uint64_t seed,
                                          std::uint64_t epoch) {
  const EpochPermutation order(n, seed, epoch);
  std::vector<std::uint64_t> values(n);
  for (std::uint64_t i = 0; i < n; ++i) values[i] = order.at(i);
  return values;
}

// A dataset on disk plus the corpus it holds, shared by the loaders of one test.
struct LoaderFixture {
  explicit LoaderFixture(Corpus corpus_in) : corpus(std::move(corpus_in)) {
    kiln::testing::write_corpus(dir / "train.h5", corpus);
    dataset = std::make_shared<const TokenDataset>(TokenDataset::open(dir / "train.h5"));
    stream = corpus.stream();
  }
  TokenLoader loader(TokenLoaderOptions options) const { return TokenLoader(dataset, options); }

  TempDir dir;
  Corpus corpus;
  std::shared_ptr<const TokenDataset> dataset;
  std::vector<std::uint32_t> stream;
};

TokenLoaderOptions options_for(std::uint64_t seq_len, std::uint64_t global_batch,
                               std::uint64_t dp_rank = 0, std::uint64_t dp_size = 1,
                               bool packed = false) {
  TokenLoaderOptions options;
  options.seq_len = seq_len;
  options.global_batch = global_batch;
  options.dp_rank = dp_rank;
  options.dp_size = dp_size;
  options.seed = 1234;
  options.packed = packed;
  return options;
}

// The dp ranks' batches of `steps` steps, each step's rows concatenated in rank order.
std::vector<std::uint32_t> tokens_over_ranks(const LoaderFixture& fixture, std::uint64_t dp_size,
                                             std::uint64_t steps, const LoaderState* resume = nullptr) {
  std::vector<TokenLoader> loaders;
  for (std::uint64_t rank = 0; rank < dp_size; ++rank) {
    loaders.push_back(fixture.loader(options_for(16, 12, rank, dp_size)));
    if (resume) loaders.back().restore(*resume);
  }
  std::vector<std::uint32_t> all;
  for (std::uint64_t step = 0; step < steps; ++step) {
    for (auto& loader : loaders) {
      const Batch batch = loader.next_batch();
      all.insert(all.end(), batch.tokens.begin(), batch.tokens.end());
    }
  }
  return all;
}

TEST(EpochPermutation, IsABijectionForManySizes) {
  for (const std::uint64_t n : {1, 2, 3, 4, 5, 7, 16, 17, 100, 1000, 4097, 65537}) {
    for (const std::uint64_t seed : {0, 1, 99}) {
      auto values = permutation_of(n, seed, seed + 3);
      std::sort(values.begin(), values.end());
      std::vector<std::uint64_t> identity(n);
      std::iota(identity.begin(), identity.end(), 0);
      EXPECT_EQ(values, identity) << "n=" << n << " seed=" << seed;
    }
  }
}

TEST(EpochPermutation, DependsOnSeedAndEpochAndIsDeterministic) {
  const auto base = permutation_of(1000, 7, 0);
  EXPECT_EQ(base, permutation_of(1000, 7, 0));
  EXPECT_NE(base, permutation_of(1000, 7, 1));
  EXPECT_NE(base, permutation_of(1000, 8, 0));
  // A shuffle, not a near-identity: few fixed points.
  std::size_t fixed = 0;
  for (std::size_t i = 0; i < base.size(); ++i) fixed += base[i] == i;
  EXPECT_LT(fixed, 20u);
}

TEST(EpochPermutation, MatchesPinnedValues) {
  // Pinned output of the algorithm specified in epoch_permutation.hpp. If this changes, every
  // resumed run would see a different sample order: bump LoaderState::kVersion instead.
  // splitmix64 with seed 0 yields mix(k * golden) for k = 1, 2, ...: the reference sequence
  // published with the generator starts e220a8397b1dcdaf, 6e789e6aa1b965f4.
  EXPECT_EQ(kiln::data::splitmix64_mix(0x9e3779b97f4a7c15ULL), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(kiln::data::splitmix64_mix(2 * 0x9e3779b97f4a7c15ULL), 0x6e789e6aa1b965f4ULL);
  const std::vector<std::uint64_t> pinned = {302, 882, 833, 87, 296, 97, 338, 148};
  const auto values = permutation_of(1000, 42, 3);
  EXPECT_EQ(std::vector<std::uint64_t>(values.begin(), values.begin() + 8), pinned);
}

TEST(TokenLoader, WindowsHoldTheRawTokens) {
  const LoaderFixture fixture(make_corpus(200, 5000, 1));
  auto loader = fixture.loader(options_for(32, 8));
  EXPECT_EQ(loader.num_windows(), (fixture.stream.size() - 1) / 32);
  for (int step = 0; step < 3; ++step) {
    const Batch batch = loader.next_batch();
    ASSERT_EQ(batch.rows, 8u);
    ASSERT_EQ(batch.tokens.size(), 8u * 33);
    EXPECT_TRUE(batch.loss_mask.empty());
    for (std::uint64_t row = 0; row < batch.rows; ++row) {
      const auto begin = fixture.stream.begin() + static_cast<long>(batch.windows[row] * 32);
      EXPECT_TRUE(std::equal(begin, begin + 33, batch.tokens.begin() + static_cast<long>(row * 33)));
    }
  }
}

TEST(TokenLoader, LastWindowEndsAtTheLastToken) {
  // 1 + 3 * 10 tokens give exactly 3 windows of seq_len 10; the last reads the final token.
  Corpus corpus;
  corpus.vocab_size = 100;
  corpus.documents = {std::vector<std::uint32_t>(31)};
  std::iota(corpus.documents[0].begin(), corpus.documents[0].end(), 0u);
  const LoaderFixture fixture(corpus);
  auto loader = fixture.loader(options_for(10, 3));
  EXPECT_EQ(loader.num_windows(), 3u);
  const Batch batch = loader.next_batch();
  std::set<std::uint32_t> firsts;
  for (std::uint64_t row = 0; row < 3; ++row) {
    firsts.insert(batch.tokens[row * 11]);
    if (batch.windows[row] == 2) {
      EXPECT_EQ(batch.tokens[row * 11 + 10], 30u);
    }
  }
  EXPECT_EQ(firsts, (std::set<std::uint32_t>{0, 10, 20}));
}

TEST(TokenLoader, EveryEpochVisitsEveryWindowOnceAcrossBatchBoundaries) {
  const LoaderFixture fixture(make_corpus(60, 1000, 2));
  // 7 rows per batch does not divide the window count, so batches straddle epochs.
  auto loader = fixture.loader(options_for(16, 7));
  const std::uint64_t n = loader.num_windows();
  std::vector<std::uint64_t> samples;
  while (samples.size() < 3 * n + 5) {
    const Batch batch = loader.next_batch();
    samples.insert(samples.end(), batch.windows.begin(), batch.windows.end());
  }
  std::vector<std::vector<std::uint64_t>> epochs;
  for (std::uint64_t e = 0; e < 3; ++e) {
    std::vector<std::uint64_t> epoch(samples.begin() + static_cast<long>(e * n),
                                     samples.begin() + static_cast<long>((e + 1) * n));
    for (std::uint64_t i = 0; i < n; ++i) EXPECT_EQ(epoch[i], loader.window_at(e, i));
    epochs.push_back(epoch);
    std::sort(epoch.begin(), epoch.end());
    EXPECT_EQ(std::unique(epoch.begin(), epoch.end()) - epoch.begin(), static_cast<long>(n));
  }
  EXPECT_NE(epochs[0], epochs[1]);
  const LoaderState state = loader.state();
  EXPECT_EQ(state.epoch * n + state.position, samples.size());
}

TEST(TokenLoader, GlobalBatchLargerThanAnEpoch) {
  Corpus corpus = make_corpus(3, 100, 3, 20, 20);  // 60 tokens: 3 windows of 16
  const LoaderFixture fixture(corpus);
  auto loader = fixture.loader(options_for(16, 8));
  ASSERT_EQ(loader.num_windows(), 3u);
  const Batch batch = loader.next_batch();
  for (std::uint64_t k = 0; k < 8; ++k) EXPECT_EQ(batch.windows[k], loader.window_at(k / 3, k % 3));
  EXPECT_EQ(loader.state().epoch, 2u);
  EXPECT_EQ(loader.state().position, 2u);
}

TEST(TokenLoader, DataParallelRanksConcatenateToTheSerialStream) {
  const LoaderFixture fixture(make_corpus(120, 3000, 4));
  const auto serial = tokens_over_ranks(fixture, 1, 9);
  EXPECT_EQ(tokens_over_ranks(fixture, 2, 9), serial);
  EXPECT_EQ(tokens_over_ranks(fixture, 3, 9), serial);
  EXPECT_EQ(tokens_over_ranks(fixture, 4, 9), serial);
}

TEST(TokenLoader, RestoredStateContinuesIdenticallyUnderAnyDp) {
  const LoaderFixture fixture(make_corpus(120, 3000, 5));
  auto original = fixture.loader(options_for(16, 12));
  for (int step = 0; step < 5; ++step) original.next_batch();
  const LoaderState saved = original.state();
  ASSERT_GT(saved.position, 0u);

  // Through both serialised forms, as a checkpoint would store it.
  const LoaderState from_json = LoaderState::from_json(nlohmann::json::parse(saved.to_json().dump()));
  const LoaderState from_words = LoaderState::from_words(saved.to_words());
  EXPECT_EQ(from_json, saved);
  EXPECT_EQ(from_words, saved);

  std::vector<std::uint32_t> continuation;
  for (int step = 0; step < 8; ++step) {
    const Batch batch = original.next_batch();
    continuation.insert(continuation.end(), batch.tokens.begin(), batch.tokens.end());
  }
  EXPECT_EQ(tokens_over_ranks(fixture, 1, 8, &from_json), continuation);
  EXPECT_EQ(tokens_over_ranks(fixture, 2, 8, &from_json), continuation);
  EXPECT_EQ(tokens_over_ranks(fixture, 4, 8, &from_words), continuation);
}

TEST(TokenLoader, RestoreRefusesAStateFromAnotherStream) {
  const LoaderFixture fixture(make_corpus(120, 3000, 6));
  auto loader = fixture.loader(options_for(16, 12));
  loader.next_batch();
  LoaderState state = loader.state();

  auto other_seed = options_for(16, 12);
  other_seed.seed = 99;
  EXPECT_NE(error_of([&] { fixture.loader(other_seed).restore(state); }).find("seed"),
            std::string::npos);
  EXPECT_NE(error_of([&] { fixture.loader(options_for(8, 12)).restore(state); }).find("seq_len"),
            std::string::npos);
  LoaderState other_data = state;
  other_data.dataset_checksum ^= 1;
  EXPECT_NE(error_of([&] { loader.restore(other_data); }).find("dataset_checksum"),
            std::string::npos);
  LoaderState past_end = state;
  past_end.position = loader.num_windows();
  EXPECT_NE(error_of([&] { loader.restore(past_end); }).find("out of range"), std::string::npos);
  nlohmann::json broken = state.to_json();
  broken.erase("position");
  EXPECT_NE(error_of([&] { LoaderState::from_json(broken); }).find("'position'"),
            std::string::npos);
}

TEST(TokenLoader, PackedBoundariesMatchDocOffsets) {
  const LoaderFixture fixture(make_corpus(300, 2000, 7, 1, 20));
  auto loader = fixture.loader(options_for(24, 16, 0, 1, /*packed=*/true));
  const auto offsets = fixture.corpus.offsets();
  const std::set<std::uint64_t> starts(offsets.begin(), offsets.end() - 1);
  for (int step = 0; step < 4; ++step) {
    const Batch batch = loader.next_batch();
    ASSERT_EQ(batch.segment_offsets.size(), batch.rows + 1);
    ASSERT_EQ(batch.positions.size(), batch.rows * 24);
    for (std::uint64_t row = 0; row < batch.rows; ++row) {
      const std::uint64_t begin = batch.windows[row] * 24;
      std::vector<std::uint32_t> expected_starts = {0};
      std::vector<std::uint32_t> expected_positions;
      std::uint32_t position = 0;
      for (std::uint32_t i = 0; i < 24; ++i) {
        if (i > 0 && starts.count(begin + i)) {
          expected_starts.push_back(i);
          position = 0;
        }
        expected_positions.push_back(position++);
      }
      const std::vector<std::uint32_t> got_starts(
          batch.segment_starts.begin() + batch.segment_offsets[row],
          batch.segment_starts.begin() + batch.segment_offsets[row + 1]);
      EXPECT_EQ(got_starts, expected_starts);
      EXPECT_GT(got_starts.size(), 1u);  // documents of <= 20 tokens: a boundary in every row
      const std::vector<std::uint32_t> got_positions(
          batch.positions.begin() + static_cast<long>(row * 24),
          batch.positions.begin() + static_cast<long>((row + 1) * 24));
      EXPECT_EQ(got_positions, expected_positions);
    }
  }
}

TEST(TokenLoader, LossMaskSliceFollowsTheTokens) {
  const LoaderFixture fixture(make_corpus(150, 4000, 8, 1, 64, /*with_masks=*/true));
  auto loader = fixture.loader(options_for(20, 6));
  const auto mask = fixture.corpus.mask_stream();
  const Batch batch = loader.next_batch();
  ASSERT_EQ(batch.loss_mask.size(), batch.tokens.size());
  for (std::uint64_t row = 0; row < batch.rows; ++row) {
    const auto begin = mask.begin() + static_cast<long>(batch.windows[row] * 20);
    EXPECT_TRUE(std::equal(begin, begin + 21, batch.loss_mask.begin() + static_cast<long>(row * 21)));
  }
}

TEST(TokenLoader, ImpossibleOptionsAreRefused) {
  const LoaderFixture fixture(make_corpus(3, 100, 9, 5, 5));  // 15 tokens
  const auto error = [&](TokenLoaderOptions options) {
    return error_of([&] { fixture.loader(options); });
  };
  const std::string too_small = error(options_for(15, 1));
  EXPECT_NE(too_small.find("train.h5"), std::string::npos) << too_small;
  EXPECT_NE(too_small.find("fewer than one window"), std::string::npos) << too_small;
  EXPECT_EQ(error(options_for(14, 1)), "(no error)");  // exactly one window of 15 tokens
  EXPECT_NE(error(options_for(4, 6, 0, 4)).find("not divisible by dp_size 4"), std::string::npos);
  EXPECT_NE(error(options_for(4, 8, 4, 4)).find("dp_rank 4"), std::string::npos);
  EXPECT_NE(error(options_for(4, 8, 0, 0)).find("dp_size"), std::string::npos);
  EXPECT_NE(error(options_for(0, 8)).find("seq_len"), std::string::npos);
  EXPECT_NE(error(options_for(4, 0)).find("global_batch"), std::string::npos);
}

}  // namespace

namespace {

// The SIGSEGV of issue 16: two adjacent doc_offsets swapped, a packed run that never verified
// the file. Every batch is either right or a kiln::Error naming /doc_offsets, never a segment
// that runs backwards (which slice_micro_batch turned into a write far outside the row).
TEST(TokenLoader, SwappedDocOffsetsAreAnErrorNotABackwardsSegment) {
  TempDir dir;
  const Corpus corpus = make_corpus(300, 2000, 7, 1, 20);
  kiln::testing::write_corpus(dir / "train.h5", corpus);
  const auto offsets = corpus.offsets();
  kiln::testing::overwrite_elements(dir / "train.h5", "doc_offsets", 150,
                                    std::vector<std::uint64_t>{offsets[151], offsets[150]}, H5T_NATIVE_UINT64);
  const auto damaged = std::make_shared<const TokenDataset>(TokenDataset::open(dir / "train.h5"));
  TokenLoader loader(damaged, options_for(24, 16, 0, 1, /*packed=*/true));
  std::string error;
  for (std::uint64_t step = 0; step * 16 < 2 * loader.num_windows() && error.empty(); ++step) {
    try {
      const Batch batch = loader.next_batch();
      for (std::uint64_t row = 0; row < batch.rows; ++row) {
        const auto first = batch.segment_starts.begin() + batch.segment_offsets[row];
        const auto last = batch.segment_starts.begin() + batch.segment_offsets[row + 1];
        ASSERT_TRUE(std::is_sorted(first, last)) << "row " << row << " has segments out of order";
        ASSERT_LT(*(last - 1), 24u);
      }
    } catch (const kiln::Error& thrown) {
      error = thrown.what();
    }
  }
  EXPECT_NE(error.find("doc_offsets[151]"), std::string::npos) << error;
}

TEST(MicroBatch, ASegmentOutsideItsRowIsAnErrorNotAWrite) {
  Batch batch;
  batch.rows = 1;
  batch.seq_len = 4;
  batch.tokens.assign(5, 1);
  batch.positions.assign(4, 0);
  batch.segment_offsets = {0, 3};
  batch.segment_starts = {0, 3, 1};  // runs backwards: [3, 1)
  EXPECT_NE(error_of([&] { kiln::train::slice_micro_batch(batch, 0, 1, {"test.bin", {.vocab_size = 8, .max_seq_len = 8}}); }).find("segment [3, 1)"), std::string::npos);
}

}  // namespace
