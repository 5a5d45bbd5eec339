#pragma once
// Stage 7 of `kiln curate`: the perplexity of a document under a kiln checkpoint. The text
// is encoded with the checkpoint's tokenizer, preceded by its end-of-text token when it has
// one (so the first word is predicted too, as in the lm-evaluation-harness), cut to
// max_tokens (or the model's context) and scored with one forward pass.
#include <filesystem>
#include <memory>
#include <string_view>

#include "data/curate/document_scorer.hpp"
#include "trainer/train/checkpoint_model.hpp"

namespace kiln::train {

class CheckpointDocumentScorer final : public curate::DocumentScorer {
 public:
  // Throws kiln::Error when the checkpoint cannot be loaded or carries no tokenizer.
  CheckpointDocumentScorer(const std::filesystem::path& checkpoint, int max_tokens);
  // NaN when the text encodes to fewer than two tokens (nothing to predict).
  double perplexity(std::string_view text) override;
  const CheckpointModel& loaded() const { return loaded_; }

 private:
  CheckpointModel loaded_;
  std::int64_t max_tokens_;
};

}  // namespace kiln::train
