#pragma once
// Validation loss of a model on a token dataset: the mean cross-entropy over the targets of
// the first `batches` loader batches (seed 0, so every evaluation of a run sees the same
// windows), and the number of targets it averaged over. A stop signal (a StopSignalHandler
// installed by the caller) ends it after the batch in flight, with `stopped` set.
#include <cstdint>

#include "data/dataset/token_dataset.hpp"
#include "trainer/model/transformer.hpp"

namespace kiln::train {

struct EvalResult {
  double loss = 0.0;
  std::int64_t tokens = 0;
  std::int64_t batches = 0;  // forwards run
  bool stopped = false;      // a stop signal ended it before all batches ran
  double perplexity() const;
};

struct EvalOptions {
  std::int64_t seq_len = 0;
  std::int64_t rows = 0;     // sequences per forward
  std::int64_t batches = 0;  // forwards; 0 = the whole dataset once; at most what it holds
  bool packed = true;
};

// Batches of options.rows windows the dataset holds (the last one may be partial).
std::int64_t batches_in_dataset(std::shared_ptr<const data::TokenDataset> dataset, const EvalOptions& options);

// Throws kiln::Error when options.batches exceeds batches_in_dataset.
EvalResult evaluate(model::Transformer& model, std::shared_ptr<const data::TokenDataset> dataset,
                    const EvalOptions& options);

}  // namespace kiln::train
