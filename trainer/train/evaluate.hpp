#pragma once
// Validation loss of a model on a token dataset: the mean cross-entropy over the targets of
// the first `batches` loader batches (seed 0, so every evaluation of a run sees the same
// windows), and the number of targets it averaged over. A stop signal (a StopSignalHandler
// installed by the caller) ends it after the batch in flight, with `stopped` set.
//
// Loss by position (options.position_bucket > 0, `kiln eval --by-position N`): the same
// targets' losses grouped by the position of the input token that predicts them, in buckets
// of N positions, to show how prediction improves (or breaks down) with more context. The
// position is the one the model is given: the index in the window when documents are not
// packed; when they are, the index inside the document (counted from the window's start for
// a document the window enters midway). Packed, attention stops at document boundaries and
// positions restart, so the 20th token of a document at window index 1500 was predicted from
// 20 tokens of context, not 1500; bucketing by window index would mix such short-context
// predictions into the long-context buckets. Either way a target at position p was
// predicted from exactly p + 1 tokens of context, which is what the buckets are meant to show.
#include <cstdint>
#include <vector>

#include "data/dataset/token_dataset.hpp"
#include "trainer/model/transformer.hpp"

namespace kiln::train {

// The targets predicted from positions [first, end).
struct PositionBucket {
  std::int64_t first = 0;
  std::int64_t end = 0;
  double loss_sum = 0.0;
  std::int64_t tokens = 0;
  double loss() const;  // mean; 0 when the bucket holds no target
};

struct EvalResult {
  double loss = 0.0;
  std::int64_t tokens = 0;
  std::int64_t batches = 0;  // forwards run
  bool stopped = false;      // a stop signal ended it before all batches ran
  // options.position_bucket > 0: buckets covering positions [0, seq_len), in order.
  std::vector<PositionBucket> by_position;
  double perplexity() const;
};

struct EvalOptions {
  std::int64_t seq_len = 0;
  std::int64_t rows = 0;     // sequences per forward
  std::int64_t batches = 0;  // forwards; 0 = the whole dataset once; at most what it holds
  bool packed = true;
  std::int64_t position_bucket = 0;  // > 0: also the loss per bucket of this many positions
};

// Batches of options.rows windows the dataset holds (the last one may be partial).
std::int64_t batches_in_dataset(std::shared_ptr<const data::TokenDataset> dataset, const EvalOptions& options);

// Throws kiln::Error when options.batches exceeds batches_in_dataset.
EvalResult evaluate(model::Transformer& model, std::shared_ptr<const data::TokenDataset> dataset,
                    const EvalOptions& options);

}  // namespace kiln::train
