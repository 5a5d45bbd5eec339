#include "trainer/train/sequence_scorer.hpp"

#include <cmath>
#include <optional>

#include "trainer/core/error.hpp"

namespace kiln::train {

namespace {

// log softmax(row)[target] over the first vocab_size entries, in double.
double log_probability(const float* row, std::int64_t vocab_size, std::uint32_t target) {
  double max = row[0];
  for (std::int64_t v = 1; v < vocab_size; ++v) max = std::max(max, static_cast<double>(row[v]));
  double sum = 0.0;
  for (std::int64_t v = 0; v < vocab_size; ++v) sum += std::exp(static_cast<double>(row[v]) - max);
  return static_cast<double>(row[target]) - max - std::log(sum);
}

}  // namespace

double SequenceScore::mean_nll() const { return tokens > 1 ? nll / static_cast<double>(tokens - 1) : 0.0; }

SequenceScore SequenceScorer::score(std::span<const std::uint32_t> ids, bool keep_logprobs) {
  SequenceScore result;
  result.tokens = static_cast<std::int64_t>(ids.size());
  if (ids.size() < 2) return result;
  const auto& config = model_.config();
  if (result.tokens > config.max_seq_len) {
    fail("a sequence of {} tokens is longer than the model's context of {} (model.max_seq_len)", result.tokens,
         config.max_seq_len);
  }
  std::vector<std::uint32_t> tokens(ids.begin(), ids.end());
  model::Batch batch;
  batch.tokens = Tensor::of(tokens.data(), {1, result.tokens});
  model_.forward(model::BatchInputs(batch, model::BatchLimits::of(config), "sequence scoring").batch());
  // [1, n, Vp] f32 on the host: the model's own logits, or a copy of those on the device.
  const Tensor logits = model_.logits();
  std::optional<OwnedTensor> host_copy;
  if (logits.device != Device::Cpu || logits.dtype != DType::F32) {
    host_copy.emplace(DType::F32, logits.shape);
    ops::copy(*host_copy, logits);
  }
  const Tensor host = host_copy ? host_copy->tensor() : logits;
  const std::int64_t row_stride = host.strides[1];
  const float* base = host.data<float>();
  for (std::size_t i = 1; i < ids.size(); ++i) {
    const double logprob = log_probability(base + static_cast<std::int64_t>(i - 1) * row_stride, config.vocab_size, ids[i]);
    result.nll -= logprob;
    if (keep_logprobs) result.logprobs.push_back(logprob);
  }
  return result;
}

}  // namespace kiln::train
