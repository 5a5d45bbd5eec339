#pragma once
// A micro-batch in the model's input form, cut out of the loader's batch (DESIGN.md §5, §8):
//   tokens    [rows, T]  inputs: window tokens [0, T)
//   targets   [rows, T]  next tokens: window tokens [1, T]
//   loss_mask [rows, T]  the target's mask (SFT datasets), empty when every token counts
//   doc_ids   [rows, T]  packed mode: the segment index of each input inside its row, so
//                        attention never crosses a document boundary
//   positions [rows, T]  packed mode: positions restarting at every document
#include <cstdint>
#include <vector>

#include "data/loader/token_loader.hpp"
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

  // Targets that count towards the loss.
  std::int64_t counted_tokens() const;
  // Views for Transformer::forward; valid while this MicroBatch lives and is unchanged.
  model::Batch view() const;
};

// Rows [first_row, first_row + rows) of the loader's batch.
MicroBatch slice_micro_batch(const data::Batch& batch, std::uint64_t first_row, std::uint64_t rows);

// The whole batch cut into micro-batches of `micro_rows` rows (the last may be shorter).
std::vector<MicroBatch> split_micro_batches(const data::Batch& batch, std::uint64_t micro_rows);

}  // namespace kiln::train
