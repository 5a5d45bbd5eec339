#pragma once
// Validation loss of a model on a token dataset: the mean cross-entropy over the targets of
// the first `batches` loader batches (seed 0, so every evaluation of a run sees the same
// windows), and the number of targets it averaged over.
#include <cstdint>

#include "data/dataset/token_dataset.hpp"
#include "trainer/model/transformer.hpp"

namespace kiln::train {

struct EvalResult {
  double loss = 0.0;
  std::int64_t tokens = 0;
  double perplexity() const;
};

struct EvalOptions {
  std::int64_t seq_len = 0;
  std::int64_t rows = 0;     // sequences per forward
  std::int64_t batches = 0;  // forwards; 0 = the whole dataset once
  bool packed = true;
};

EvalResult evaluate(model::Transformer& model, std::shared_ptr<const data::TokenDataset> dataset,
                    const EvalOptions& options);

}  // namespace kiln::train
