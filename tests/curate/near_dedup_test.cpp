// MinHash-LSH: planted pairs at known Jaccard similarities are detected at the rate the
// banding curve predicts; the dedup decisions keep the lowest ordinal of every group
// whatever order the records arrive in; the external sort gives the same answer when it
// spills to disk.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "data/curate/dedup_index.hpp"
#include "data/curate/external_sort.hpp"
#include "data/curate/minhash.hpp"
#include "data/curate/union_find.hpp"
#include "tests/curate/curate_testing.hpp"

namespace kiln::curate {
namespace {

std::filesystem::path scratch_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("kiln_curate_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

// Two documents of distinct single-word shingles whose sets have Jaccard similarity
// shared / (2 n - shared).
std::pair<std::string, std::string> planted_pair(std::uint64_t pair, int n, int shared) {
  std::string a, b;
  // Letters only: digits would be folded to "0" by the shingle normalisation.
  auto letters = [](std::uint64_t value) {
    std::string out;
    do {
      out.push_back(static_cast<char>('a' + value % 26));
      value /= 26;
    } while (value > 0);
    return out;
  };
  auto word = [&](std::uint64_t side, int i) {
    return letters(pair) + "q" + letters(side) + "z" + letters(static_cast<std::uint64_t>(i));
  };
  for (int i = 0; i < n; ++i) {
    a += word(0, i) + " ";
    b += (i < shared ? word(0, i) : word(1, i)) + " ";
  }
  return {a, b};
}

TEST(MinHash, DetectionRateFollowsTheLshCurve) {
  MinHashOptions options;  // 14 bands x 8 rows
  options.shingle_words = 1;
  const MinHasher hasher(options);
  const int n = 200;
  const int pairs = 400;
  for (double target : {0.5, 0.7, 0.8, 0.9}) {
    const int shared = static_cast<int>(std::lround(2.0 * n * target / (1.0 + target)));
    const double similarity = static_cast<double>(shared) / (2.0 * n - shared);
    int detected = 0;
    std::vector<std::uint64_t> bands_a, bands_b;
    for (int pair = 0; pair < pairs; ++pair) {
      const auto [a, b] = planted_pair(static_cast<std::uint64_t>(pair) + static_cast<std::uint64_t>(target * 1e4), n, shared);
      hasher.band_hashes(a, bands_a);
      hasher.band_hashes(b, bands_b);
      bool any = false;
      for (std::size_t band = 0; band < bands_a.size(); ++band) any = any || bands_a[band] == bands_b[band];
      detected += any;
    }
    const double expected = lsh_detection_probability(similarity, options.bands, options.rows);
    const double rate = static_cast<double>(detected) / pairs;
    const double sigma = std::sqrt(std::max(expected * (1 - expected), 1e-4) / pairs);
    EXPECT_NEAR(rate, expected, 4 * sigma + 0.01) << "similarity " << similarity;
  }
}

TEST(MinHash, SignatureAgreementEstimatesJaccard) {
  MinHashOptions options;
  options.shingle_words = 1;
  options.bands = 64;
  options.rows = 8;  // 512 functions: standard error ~0.02
  const MinHasher hasher(options);
  const auto [a, b] = planted_pair(7, 300, 200);  // J = 200 / 400 = 0.5
  std::vector<std::uint32_t> sa, sb;
  hasher.signature(a, sa);
  hasher.signature(b, sb);
  std::size_t equal = 0;
  for (std::size_t i = 0; i < sa.size(); ++i) equal += sa[i] == sb[i];
  EXPECT_NEAR(static_cast<double>(equal) / static_cast<double>(sa.size()), 0.5, 0.08);
}

TEST(MinHash, FormattingDoesNotHideACopy) {
  const MinHasher hasher({});
  std::vector<std::uint64_t> a, b;
  hasher.band_hashes("The River flows, slowly; to the SEA.", a);
  hasher.band_hashes("the river flows slowly to the sea", b);
  EXPECT_EQ(a, b);
  hasher.band_hashes("", a);
  EXPECT_TRUE(a.empty());
}

TEST(LshCurve, MatchesTheFormula) {
  EXPECT_NEAR(lsh_detection_probability(0.8, 14, 8), 1 - std::pow(1 - std::pow(0.8, 8), 14), 1e-12);
  EXPECT_NEAR(lsh_detection_probability(0.8, 14, 8), 0.9235, 1e-4);  // FineWeb's documented value
  EXPECT_EQ(lsh_detection_probability(1.0, 14, 8), 1.0);
  EXPECT_EQ(lsh_detection_probability(0.0, 14, 8), 0.0);
}

TEST(UnionFind, RootIsTheSmallestMember) {
  UnionFind sets;
  sets.unite(9, 4);
  sets.unite(7, 9);
  sets.unite(12, 30);
  EXPECT_EQ(sets.find(7), 4u);
  EXPECT_EQ(sets.find(30), 12u);
  sets.unite(30, 7);
  EXPECT_EQ(sets.find(12), 4u);
}

TEST(ExternalSort, SpillsAndMergesInOrder) {
  const auto dir = scratch_dir("sort");
  ExternalSorter<HashRecord> sorter(dir, 64 * sizeof(HashRecord));  // spills every 64 records
  std::vector<HashRecord> records;
  Rng rng(5);
  for (int i = 0; i < 5000; ++i) records.push_back({rng.below(300), rng.next()});
  for (const auto& record : records) sorter.add(record);
  EXPECT_GT(sorter.runs_spilled(), 50u);
  std::vector<HashRecord> sorted;
  sorter.drain([&](const HashRecord& record) { sorted.push_back(record); });
  std::sort(records.begin(), records.end());
  ASSERT_EQ(sorted.size(), records.size());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    EXPECT_EQ(sorted[i].hash, records[i].hash);
    EXPECT_EQ(sorted[i].ordinal, records[i].ordinal);
  }
  std::filesystem::remove_all(dir);
}

// Exact groups {3, 8, 1} and near-duplicate chains {10-20, 20-5} and {40-41}.
DedupDecisions decide_planted(std::size_t budget, std::uint64_t shuffle_seed) {
  struct Planted {
    DedupKind kind;
    std::uint64_t hash, ordinal;
  };
  std::vector<Planted> planted = {
      {DedupKind::Exact, 111, 3}, {DedupKind::Exact, 111, 8}, {DedupKind::Exact, 111, 1}, {DedupKind::Exact, 222, 2},
      {DedupKind::Exact, 333, 10}, {DedupKind::Exact, 444, 20}, {DedupKind::Exact, 555, 5}, {DedupKind::Exact, 666, 40},
      {DedupKind::Exact, 777, 41}, {DedupKind::Band, 9000, 10}, {DedupKind::Band, 9000, 20}, {DedupKind::Band, 9100, 20},
      {DedupKind::Band, 9100, 5}, {DedupKind::Band, 9200, 41}, {DedupKind::Band, 9200, 40},
      // the exact duplicates 3 and 8 share a band with 1 and with 40: they must not link clusters
      {DedupKind::Band, 9300, 8}, {DedupKind::Band, 9300, 40}, {DedupKind::Band, 9301, 3}, {DedupKind::Band, 9301, 2}};
  std::mt19937_64 shuffle(shuffle_seed);
  std::shuffle(planted.begin(), planted.end(), shuffle);
  const auto dir = scratch_dir("dedup" + std::to_string(shuffle_seed));
  DedupIndex index(dir, budget);
  for (const auto& p : planted) index.add(p.kind, p.hash, p.ordinal);
  auto decisions = index.decide();
  std::filesystem::remove_all(dir);
  return decisions;
}

TEST(DedupIndex, KeepsLowestOrdinalWhateverTheOrder) {
  for (std::uint64_t seed = 0; seed < 8; ++seed) {
    for (std::size_t budget : {std::size_t{1} << 20, std::size_t{64}}) {
      const auto decisions = decide_planted(budget, seed);
      EXPECT_EQ(decisions.exact_removed, (std::vector<std::uint64_t>{3, 8}));
      EXPECT_EQ(decisions.near_removed, (std::vector<std::uint64_t>{10, 20, 41}));
      EXPECT_EQ(decisions.clusters, 2u);
    }
  }
}

}  // namespace
}  // namespace kiln::curate
