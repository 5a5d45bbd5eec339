#pragma once
// Picks the next token from one row of logits (DESIGN.md §5: padding columns are never
// sampled). temperature 0 is greedy; otherwise softmax at the temperature, restricted to the
// top_k most likely tokens (0 = all) and to the smallest set whose probability reaches top_p
// (1 = all), renormalised, and drawn with the seeded generator.
#include <cstdint>

#include "kernels/tensor.hpp"
#include "trainer/core/random.hpp"

namespace kiln::train {

struct SamplingOptions {
  double temperature = 1.0;
  std::int64_t top_k = 0;
  double top_p = 1.0;
};

// logits: [Vp] f32 or f64; only the first valid_vocab entries are candidates.
std::uint32_t sample_token(Tensor logits, std::int64_t valid_vocab, const SamplingOptions& options, Rng& rng);

}  // namespace kiln::train
