#pragma once
// Stage 7's view of a language model: a perplexity per document. Declared here so the data
// library does not depend on the trainer; trainer/train/document_scorer.* implements it
// with a kiln checkpoint and the CLI hands that implementation to the pipeline.
#include <string_view>

namespace kiln::curate {

class DocumentScorer {
 public:
  virtual ~DocumentScorer() = default;
  // exp(mean next-token cross-entropy) of the text under the model. Called from one thread
  // at a time (the model may use every core inside one call).
  virtual double perplexity(std::string_view text) = 0;
};

}  // namespace kiln::curate
