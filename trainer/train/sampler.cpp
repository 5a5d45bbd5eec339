#include "trainer/train/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "trainer/core/error.hpp"

namespace kiln::train {

namespace {

std::vector<double> read_logits(Tensor logits, std::int64_t valid_vocab) {
  std::vector<double> values(static_cast<std::size_t>(valid_vocab));
  for (std::int64_t i = 0; i < valid_vocab; ++i) {
    const std::int64_t at = i * logits.stride(0);
    values[static_cast<std::size_t>(i)] =
        logits.dtype == DType::F64 ? logits.data<double>()[at] : static_cast<double>(logits.data<float>()[at]);
  }
  return values;
}

}  // namespace

std::uint32_t sample_token(Tensor logits, std::int64_t valid_vocab, const SamplingOptions& options, Rng& rng) {
  if (valid_vocab <= 0 || valid_vocab > logits.size(0)) fail("sampling: valid vocabulary {} out of range", valid_vocab);
  const std::vector<double> values = read_logits(logits, valid_vocab);
  if (options.temperature <= 0.0) {
    return static_cast<std::uint32_t>(std::max_element(values.begin(), values.end()) - values.begin());
  }
  // Candidates by decreasing logit (ties: lower id first, so the order is deterministic).
  std::vector<std::uint32_t> order(values.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return values[a] > values[b]; });
  std::size_t keep = order.size();
  if (options.top_k > 0) keep = std::min(keep, static_cast<std::size_t>(options.top_k));

  std::vector<double> probabilities(keep);
  const double top = values[order[0]];
  double total = 0.0;
  for (std::size_t i = 0; i < keep; ++i) {
    probabilities[i] = std::exp((values[order[i]] - top) / options.temperature);
    total += probabilities[i];
  }
  if (options.top_p < 1.0) {
    double cumulative = 0.0;
    std::size_t nucleus = 0;
    while (nucleus < keep && cumulative < options.top_p * total) cumulative += probabilities[nucleus++];
    keep = std::max<std::size_t>(nucleus, 1);
    total = std::accumulate(probabilities.begin(), probabilities.begin() + static_cast<std::ptrdiff_t>(keep), 0.0);
  }
  double draw = rng.uniform() * total;
  for (std::size_t i = 0; i < keep; ++i) {
    draw -= probabilities[i];
    if (draw < 0.0) return order[i];
  }
  return order[keep - 1];
}

}  // namespace kiln::train
