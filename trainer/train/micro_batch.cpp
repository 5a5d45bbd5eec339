#include "trainer/train/micro_batch.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "trainer/core/error.hpp"

namespace kiln::train {

namespace {

template <class T>
Tensor view_of(const std::vector<T>& values, std::int64_t rows, std::int64_t seq_len) {
  if (values.empty()) return {};
  return Tensor::of(values.data(), {rows, seq_len});
}

// Segment index of every input position of one row, from the row's segment starts.
void fill_doc_ids(const data::Batch& batch, std::uint64_t row, std::uint32_t* out) {
  const auto first = batch.segment_offsets[row];
  const auto last = batch.segment_offsets[row + 1];
  for (std::uint32_t segment = first; segment < last; ++segment) {
    const std::uint32_t begin = batch.segment_starts[segment];
    const auto end = segment + 1 < last ? batch.segment_starts[segment + 1] : static_cast<std::uint32_t>(batch.seq_len);
    // The loader guarantees ascending starts inside the row; a violation must not write past it.
    if (begin > end || end > batch.seq_len) fail("micro-batch row {}: segment [{}, {}) is outside [0, {})", row, begin, end, batch.seq_len);
    std::fill(out + begin, out + end, segment - first);
  }
}

}  // namespace

std::int64_t MicroBatch::counted_tokens() const {
  if (loss_mask.empty()) return rows * seq_len;
  return static_cast<std::int64_t>(std::count_if(loss_mask.begin(), loss_mask.end(), [](std::uint8_t m) { return m != 0; }));
}

model::Batch MicroBatch::view() const {
  model::Batch batch;
  batch.tokens = view_of(tokens, rows, seq_len);
  batch.targets = view_of(targets, rows, seq_len);
  batch.loss_mask = view_of(loss_mask, rows, seq_len);
  batch.doc_ids = view_of(doc_ids, rows, seq_len);
  batch.positions = view_of(positions, rows, seq_len);
  batch.context = context;
  return batch;
}

MicroBatch context_parallel_part(const MicroBatch& whole, int rank, int ranks) {
  const std::vector<std::int64_t> ids(whole.doc_ids.begin(), whole.doc_ids.end());
  auto chunks = std::make_shared<const parallel::ContextChunks>(ids, whole.rows, whole.seq_len, ranks);
  MicroBatch part;
  part.rows = whole.rows;
  part.seq_len = 2 * chunks->chunk();
  part.tokens = chunks->take(whole.tokens, rank);
  part.targets = chunks->take(whole.targets, rank);
  if (!whole.loss_mask.empty()) part.loss_mask = chunks->take(whole.loss_mask, rank);
  if (!whole.doc_ids.empty()) part.doc_ids = chunks->take(whole.doc_ids, rank);
  part.positions = chunks->take(whole.positions, rank);
  part.context = std::move(chunks);
  return part;
}

MicroBatch slice_micro_batch(const data::Batch& batch, std::uint64_t first_row, std::uint64_t rows,
                             const MicroBatchSource& source) {
  MicroBatch micro;
  const std::uint64_t t = batch.seq_len;
  micro.rows = static_cast<std::int64_t>(rows);
  micro.seq_len = static_cast<std::int64_t>(t);
  micro.tokens.resize(rows * t);
  micro.targets.resize(rows * t);
  const bool masked = !batch.loss_mask.empty();
  const bool packed = !batch.positions.empty();
  if (masked) micro.loss_mask.resize(rows * t);
  if (packed) {
    micro.doc_ids.resize(rows * t);
    micro.positions.assign(batch.positions.begin() + static_cast<std::ptrdiff_t>(first_row * t),
                           batch.positions.begin() + static_cast<std::ptrdiff_t>((first_row + rows) * t));
  }
  for (std::uint64_t r = 0; r < rows; ++r) {
    const std::uint64_t window = (first_row + r) * (t + 1);  // the row's t + 1 tokens in the batch
    std::copy_n(batch.tokens.begin() + static_cast<std::ptrdiff_t>(window), t, micro.tokens.begin() + static_cast<std::ptrdiff_t>(r * t));
    std::copy_n(batch.tokens.begin() + static_cast<std::ptrdiff_t>(window + 1), t, micro.targets.begin() + static_cast<std::ptrdiff_t>(r * t));
    if (masked) {
      std::copy_n(batch.loss_mask.begin() + static_cast<std::ptrdiff_t>(window + 1), t,
                  micro.loss_mask.begin() + static_cast<std::ptrdiff_t>(r * t));
    }
    if (packed) fill_doc_ids(batch, first_row + r, micro.doc_ids.data() + r * t);
  }
  if (!packed) {
    const auto positions = model::document_positions({}, micro.rows, micro.seq_len);
    micro.positions.assign(positions.begin(), positions.end());
  }
  model::check_batch_values(micro.view(), source.limits,
                            fmt::format("{}: micro-batch of rows [{}, {})", source.dataset,
                                        first_row, first_row + rows));
  return micro;
}

std::vector<MicroBatch> split_micro_batches(const data::Batch& batch, std::uint64_t micro_rows,
                                            const MicroBatchSource& source) {
  std::vector<MicroBatch> micro_batches;
  for (std::uint64_t first = 0; first < batch.rows; first += micro_rows) {
    micro_batches.push_back(slice_micro_batch(batch, first, std::min(micro_rows, batch.rows - first), source));
  }
  return micro_batches;
}

}  // namespace kiln::train
