#pragma once
// A micro-batch in the model's input form, cut out of the loader's batch (DESIGN.md §5, §8):
//   tokens    [rows, T]  inputs: window tokens [0, T)
//   targets   [rows, T]  next tokens: window tokens [1, T]
//   loss_mask [rows, T]  the target's mask (SFT datasets), empty when every token counts
//   doc_ids   [rows, T]  packed mode: the segment index of each input inside its row, so
//                        attention never crosses a document boundary
//   positions [rows, T]  0..T-1 per row; packed mode: restarting at every document
// Every micro-batch is checked once here, on the host (ids inside the model's vocabulary,
// positions inside its context), so the model takes it as it is (trainer/model/batch.hpp).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/loader/token_loader.hpp"
#include "parallel/context_parallel.hpp"
#include "trainer/model/transformer.hpp"

namespace kiln::train {

struct MicroBatch {
  std::int64_t rows = 0;
  std::int64_t seq_len = 0;
  std::vector<std::uint32_t> tokens;
  std::vector<std::uint32_t> targets;
  std::vector<std::uint8_t> loss_mask;
  std::vector<std::uint32_t> doc_ids;
  std::vector<std::uint32_t> positions;
  // Under context parallelism: how the whole rows were cut (see context_parallel_part).
  std::shared_ptr<const parallel::ContextChunks> context;

  // Targets that count towards the loss.
  std::int64_t counted_tokens() const;
  // Views for Transformer::forward; valid while this MicroBatch lives and is unchanged.
  model::Batch view() const;
};

// Where the loader's batches come from (named in errors) and the model that takes them.
struct MicroBatchSource {
  std::string dataset;
  model::BatchLimits limits;
};

// Rows [first_row, first_row + rows) of the loader's batch, checked against source.limits.
MicroBatch slice_micro_batch(const data::Batch& batch, std::uint64_t first_row, std::uint64_t rows,
                             const MicroBatchSource& source);

// Context parallelism: cp rank `rank`'s part of `whole` (of `ranks` ranks), its two chunks of
// every row (parallel/context_parallel.hpp) with their targets, mask, document ids and
// positions, which stay those of the whole row; seq_len becomes 2 x T / (2 x ranks).
MicroBatch context_parallel_part(const MicroBatch& whole, int rank, int ranks);

// The whole batch cut into micro-batches of `micro_rows` rows (the last may be shorter).
std::vector<MicroBatch> split_micro_batches(const data::Batch& batch, std::uint64_t micro_rows,
                                            const MicroBatchSource& source);

}  // namespace kiln::train
