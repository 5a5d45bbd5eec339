#include "trainer/train/document_scorer.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "trainer/core/error.hpp"

namespace kiln::train {

CheckpointDocumentScorer::CheckpointDocumentScorer(const std::filesystem::path& checkpoint, int max_tokens)
    : loaded_(load_checkpoint_model(checkpoint)) {
  if (!loaded_.tokenizer) {
    fail("model_scoring.checkpoint: {} carries no tokenizer.json, so documents cannot be encoded for scoring",
         loaded_.step_dir.string());
  }
  const std::int64_t context = loaded_.model->config().max_seq_len;
  max_tokens_ = max_tokens > 0 ? std::min<std::int64_t>(max_tokens, context) : context;
}

double CheckpointDocumentScorer::perplexity(std::string_view text) {
  std::vector<tok::TokenId> ids;
  if (const auto eos = loaded_.tokenizer->eos_id()) ids.push_back(*eos);
  const auto encoded = loaded_.tokenizer->encode(text);
  ids.insert(ids.end(), encoded.begin(), encoded.end());
  // max_tokens inputs predict max_tokens targets: one more id than positions.
  if (static_cast<std::int64_t>(ids.size()) > max_tokens_ + 1) ids.resize(static_cast<std::size_t>(max_tokens_ + 1));
  if (ids.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  const auto length = static_cast<std::int64_t>(ids.size() - 1);
  std::vector<tok::TokenId> inputs(ids.begin(), ids.end() - 1);
  std::vector<tok::TokenId> targets(ids.begin() + 1, ids.end());
  model::Batch batch;
  batch.tokens = Tensor::of(inputs.data(), {1, length});
  batch.targets = Tensor::of(targets.data(), {1, length});
  const model::BatchInputs checked(batch, model::BatchLimits::of(loaded_.model->config()), "document scoring");
  const ops::LossSum loss = loaded_.model->forward(checked.batch());
  return std::exp(loss.mean());
}

}  // namespace kiln::train
