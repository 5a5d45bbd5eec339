#include "data/curate/minhash.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "data/curate/text_units.hpp"
#include "trainer/core/random.hpp"

namespace kiln::curate {

double lsh_detection_probability(double similarity, int bands, int rows) {
  return 1.0 - std::pow(1.0 - std::pow(similarity, rows), bands);
}

MinHasher::MinHasher(const MinHashOptions& options) : options_(options) {
  const auto functions = static_cast<std::size_t>(options.bands * options.rows);
  Rng rng(mix_seed(options.seed, 0x6d696e68617368ULL));
  multipliers_.resize(functions);
  offsets_.resize(functions);
  for (std::size_t i = 0; i < functions; ++i) {
    multipliers_[i] = rng.next() | 1;  // odd, so x -> a x is a bijection mod 2^64
    offsets_[i] = rng.next();
  }
}

void MinHasher::shingle_hashes(std::string_view text, std::vector<std::uint64_t>& shingles) const {
  thread_local std::vector<SimpleWord> words;
  thread_local std::string scratch;
  simple_words(text, words, scratch, options_.fold_numbers);
  shingles.clear();
  if (words.empty()) return;
  const auto n = std::min<std::size_t>(static_cast<std::size_t>(options_.shingle_words), words.size());
  for (std::size_t i = 0; i + n <= words.size(); ++i) {
    std::uint64_t hash = n;
    for (std::size_t k = i; k < i + n; ++k) hash = extend_hash(hash, words[k].hash);
    shingles.push_back(hash);
  }
  // A set, not a multiset: repeated shingles must not weigh more.
  std::sort(shingles.begin(), shingles.end());
  shingles.erase(std::unique(shingles.begin(), shingles.end()), shingles.end());
}

void MinHasher::signature(std::string_view text, std::vector<std::uint32_t>& values) const {
  thread_local std::vector<std::uint64_t> shingles;
  shingle_hashes(text, shingles);
  const std::size_t functions = multipliers_.size();
  values.assign(functions, std::numeric_limits<std::uint32_t>::max());
  if (shingles.empty()) {
    values.clear();
    return;
  }
  const std::uint64_t* a = multipliers_.data();
  const std::uint64_t* b = offsets_.data();
  std::uint32_t* out = values.data();
  for (const std::uint64_t x : shingles) {
    for (std::size_t i = 0; i < functions; ++i) {  // vectorises: independent lanes
      const auto h = static_cast<std::uint32_t>((a[i] * x + b[i]) >> 32);
      out[i] = std::min(out[i], h);
    }
  }
}

void MinHasher::band_hashes(std::string_view text, std::vector<std::uint64_t>& bands) const {
  thread_local std::vector<std::uint32_t> values;
  signature(text, values);
  bands.clear();
  if (values.empty()) return;
  const auto rows = static_cast<std::size_t>(options_.rows);
  for (std::size_t band = 0; band < static_cast<std::size_t>(options_.bands); ++band) {
    bands.push_back(XXH3_64bits_withSeed(values.data() + band * rows, rows * sizeof(std::uint32_t), band));
  }
}

}  // namespace kiln::curate
