#include "data/loader/epoch_permutation.hpp"

#include <algorithm>
#include <bit>
#include <cassert>

namespace kiln::data {

namespace {
constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
}

std::uint64_t splitmix64_mix(std::uint64_t value) {
  value ^= value >> 30;
  value *= 0xbf58476d1ce4e5b9ULL;
  value ^= value >> 27;
  value *= 0x94d049bb133111ebULL;
  value ^= value >> 31;
  return value;
}

EpochPermutation::EpochPermutation(std::uint64_t n, std::uint64_t seed, std::uint64_t epoch)
    : n_(n) {
  assert(n >= 1);
  const int domain_bits = static_cast<int>(std::bit_width(n - 1));
  half_bits_ = std::max(1, (domain_bits + 1) / 2);
  half_mask_ = (std::uint64_t{1} << half_bits_) - 1;
  const std::uint64_t epoch_key = splitmix64_mix(seed ^ splitmix64_mix(epoch + kGolden));
  for (int round = 0; round < kRounds; ++round) {
    round_keys_[round] =
        splitmix64_mix(epoch_key + static_cast<std::uint64_t>(round + 1) * kGolden);
  }
}

std::uint64_t EpochPermutation::encrypt(std::uint64_t value) const {
  std::uint64_t left = value >> half_bits_;
  std::uint64_t right = value & half_mask_;
  for (const std::uint64_t key : round_keys_) {
    const std::uint64_t mixed = left ^ (splitmix64_mix(right ^ key) & half_mask_);
    left = right;
    right = mixed;
  }
  return (left << half_bits_) | right;
}

std::uint64_t EpochPermutation::at(std::uint64_t position) const {
  assert(position < n_);
  std::uint64_t value = encrypt(position);
  // Cycle walking: the walk stays on position's cycle, which holds at least one value < n.
  while (value >= n_) value = encrypt(value);
  return value;
}

}  // namespace kiln::data
