#pragma once
// The order in which one epoch visits the n windows of a dataset (DESIGN.md §8): a keyed
// pseudo-random bijection of [0, n), computed per element in O(1) memory and time, so the
// position of any sample is known without materialising a shuffled array of n entries.
//
// Fully specified with 64-bit integer arithmetic, so every platform and compiler (and any
// reimplementation) produces the same order; nothing comes from <random>.
//
//   mix(x)      = splitmix64 finaliser: x ^= x >> 30; x *= 0xbf58476d1ce4e5b9;
//                 x ^= x >> 27; x *= 0x94d049bb133111eb; x ^= x >> 31
//   epoch key   = mix(seed ^ mix(epoch + 0x9e3779b97f4a7c15))
//   round key r = mix(epoch key + (r + 1) * 0x9e3779b97f4a7c15), r = 0 .. kRounds-1
//   h           = max(1, ceil(bit_width(n - 1) / 2)): the domain [0, 4^h) covers [0, n)
//   encrypt(x)  = balanced Feistel network on (L, R) = (x >> h, x & (2^h - 1)), each round
//                 (L, R) <- (R, L ^ (mix(R ^ round key r) & (2^h - 1))); result (L << h) | R
//   at(i)       = encrypt(i), re-encrypted while the result is >= n ("cycle walking"; the
//                 domain is < 4n, so on average fewer than 4 encryptions)
#include <array>
#include <cstdint>

namespace kiln::data {

class EpochPermutation {
 public:
  static constexpr int kRounds = 6;

  // n >= 1 windows; (seed, epoch) pick the permutation.
  EpochPermutation(std::uint64_t n, std::uint64_t seed, std::uint64_t epoch);

  // The window visited at position i (< n) of the epoch.
  std::uint64_t at(std::uint64_t position) const;
  std::uint64_t size() const { return n_; }

 private:
  std::uint64_t encrypt(std::uint64_t value) const;

  std::uint64_t n_;
  int half_bits_;
  std::uint64_t half_mask_;
  std::array<std::uint64_t, kRounds> round_keys_{};
};

// splitmix64's output mixing function (see above); exposed for tests and for seeding.
std::uint64_t splitmix64_mix(std::uint64_t value);

}  // namespace kiln::data
