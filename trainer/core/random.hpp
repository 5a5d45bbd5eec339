#pragma once
// A small, fully specified PRNG (splitmix64) so that everything kiln derives from a seed —
// corpus documents, dataset splits, sample orders — is identical on every platform and
// standard library (std::uniform_int_distribution is implementation-defined).
#include <cstdint>
#include <vector>

namespace kiln {

// One step of splitmix64: a strong 64-bit mix, also usable as a keyed hash.
constexpr std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// Hash of several words, order-sensitive: a seed for one (run seed, stream, index) triple.
constexpr std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0) {
  return splitmix64(splitmix64(splitmix64(a) ^ b) ^ c);
}

class Rng {
 public:
  explicit constexpr Rng(std::uint64_t seed) : state_(seed) {}

  constexpr std::uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    std::uint64_t x = state_;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
  }

  // Uniform in [0, bound), unbiased (rejection of the short final interval).
  constexpr std::uint64_t below(std::uint64_t bound) {
    const std::uint64_t limit = bound == 0 ? 0 : (~std::uint64_t{0} - bound + 1) % bound;
    std::uint64_t draw = next();
    while (draw < limit) draw = next();
    return bound == 0 ? 0 : draw % bound;
  }

  // Uniform integer in [low, high].
  constexpr int between(int low, int high) {
    return low + static_cast<int>(below(static_cast<std::uint64_t>(high - low) + 1));
  }

  // Uniform in [0, 1) with 53 random bits.
  constexpr double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  // The whole generator state: Rng(state()) continues the same sequence (checkpoints save it).
  constexpr std::uint64_t state() const { return state_; }

  template <class T>
  const T& pick(const std::vector<T>& items) {
    return items[below(items.size())];
  }

 private:
  std::uint64_t state_;
};

}  // namespace kiln
