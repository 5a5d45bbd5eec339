#pragma once
// MinHash signatures over word shingles (Broder 1997) for near-duplicate detection, banded
// for LSH (stage 4). A document's shingles are its word n-grams in simplified form
// (lowercase, no punctuation, numbers folded), so formatting changes do not hide a copy.
//
// bands x rows hash functions; each is a multiply-shift hash h_i(x) = (a_i x + b_i) >> 32 of
// the shingle's 64-bit hash, with (a_i, b_i) drawn from the seed. Two documents with
// Jaccard similarity s agree on one function with probability s, on all rows of a band
// with s^r, so share at least one band with P(s) = 1 - (1 - s^r)^b.
#include <cstdint>
#include <string_view>
#include <vector>

namespace kiln::curate {

struct MinHashOptions {
  bool enabled = true;
  int bands = 14;
  int rows = 8;
  int shingle_words = 5;
  bool fold_numbers = true;  // "47" and "12" compare equal (as "0")
  std::uint64_t seed = 1;
};

// P(s) = 1 - (1 - s^rows)^bands: the chance that a pair with Jaccard similarity s shares a
// band and becomes a candidate.
double lsh_detection_probability(double similarity, int bands, int rows);

class MinHasher {
 public:
  explicit MinHasher(const MinHashOptions& options);

  // One hash per band (the band's rows hashed together); empty when the text has no words.
  // Texts shorter than a shingle count as one shingle of all their words.
  void band_hashes(std::string_view text, std::vector<std::uint64_t>& bands) const;
  // The full signature (bands * rows values), for tests and diagnostics.
  void signature(std::string_view text, std::vector<std::uint32_t>& values) const;

 private:
  void shingle_hashes(std::string_view text, std::vector<std::uint64_t>& shingles) const;

  MinHashOptions options_;
  std::vector<std::uint64_t> multipliers_;
  std::vector<std::uint64_t> offsets_;
};

}  // namespace kiln::curate
