#include "trainer/model/batch.hpp"

#include <fmt/format.h>

#include "trainer/core/error.hpp"

namespace kiln::model {

namespace {

std::vector<std::int64_t> read_ids(const Tensor& ids, std::string_view source, const char* what) {
  if (!ids.is_contiguous()) fail("{}: batch.{} {} must be contiguous", source, what, ids.str());
  return index_values(ids, fmt::format("{}: batch.{}", source, what));
}

void check_shapes(const Batch& batch, const BatchLimits& limits, std::string_view source) {
  const Tensor& tokens = batch.tokens;
  if (!tokens.defined() || tokens.rank() != 2 || tokens.numel() == 0)
    fail("{}: batch.tokens is {}; expected a non-empty [B, T]", source, tokens.str());
  if (tokens.size(1) > limits.max_seq_len)
    fail("{}: sequence length {} exceeds max_seq_len {}", source, tokens.size(1),
         limits.max_seq_len);
  const auto check_same_shape = [&](const Tensor& t, const char* name) {
    if (t.defined() && t.shape != tokens.shape)
      fail("{}: batch.{} is {}; expected {} like batch.tokens", source, name, t.str(),
           tokens.shape.str());
  };
  check_same_shape(batch.targets, "targets");
  check_same_shape(batch.loss_mask, "loss_mask");
  check_same_shape(batch.doc_ids, "doc_ids");
  check_same_shape(batch.positions, "positions");
  if (!batch.positions.defined())
    fail("{}: batch.positions is missing; build them with model::document_positions", source);
  if (batch.loss_mask.defined() &&
      (batch.loss_mask.dtype != DType::U8 || !batch.loss_mask.is_contiguous()))
    fail("{}: batch.loss_mask is {}; expected contiguous u8", source, batch.loss_mask.str());
}

// [row, column] of flat element i of a [B, T] batch, for messages.
std::string at(std::size_t i, std::int64_t seq_len) {
  const auto t = static_cast<std::size_t>(seq_len);
  return fmt::format("row {}, position {}", i / t, i % t);
}

}  // namespace

// Padded vocabulary rows are not tokens: an id there would read a zero embedding silently,
// and a vocab-parallel loss cannot see a target outside every shard.
void check_batch_values(const Batch& batch, const BatchLimits& limits, std::string_view source) {
  check_shapes(batch, limits, source);
  const std::int64_t T = batch.tokens.size(1);
  const std::vector<std::int64_t> tokens = read_ids(batch.tokens, source, "tokens");
  for (std::size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= limits.vocab_size)
      fail("{}: token id {} is outside the vocabulary of {} tokens ({})", source, tokens[i],
           limits.vocab_size, at(i, T));
  if (batch.targets.defined()) {
    const std::vector<std::int64_t> targets = read_ids(batch.targets, source, "targets");
    const auto* keep = batch.loss_mask.defined() ? batch.loss_mask.data<std::uint8_t>() : nullptr;
    for (std::size_t i = 0; i < targets.size(); ++i)
      if ((keep == nullptr || keep[i] != 0) && (targets[i] < 0 || targets[i] >= limits.vocab_size))
        fail("{}: target id {} is outside the vocabulary of {} tokens ({})", source, targets[i],
             limits.vocab_size, at(i, T));
  }
  if (batch.doc_ids.defined()) read_ids(batch.doc_ids, source, "doc_ids");
  const std::vector<std::int64_t> positions = read_ids(batch.positions, source, "positions");
  for (std::size_t i = 0; i < positions.size(); ++i)
    if (positions[i] < 0 || positions[i] >= limits.max_seq_len)
      fail("{}: position {} is outside [0, max_seq_len {}) ({})", source, positions[i],
           limits.max_seq_len, at(i, T));
}

std::vector<std::int32_t> document_positions(Tensor doc_ids, std::int64_t rows,
                                             std::int64_t seq_len) {
  const std::vector<std::int64_t> docs =
      doc_ids.defined() ? read_ids(doc_ids, "document_positions", "doc_ids")
                        : std::vector<std::int64_t>{};
  if (!docs.empty() && static_cast<std::int64_t>(docs.size()) != rows * seq_len)
    fail("document_positions: batch.doc_ids {} does not hold {} x {} ids", doc_ids.str(), rows,
         seq_len);
  std::vector<std::int32_t> positions(static_cast<std::size_t>(rows * seq_len));
  for (std::int64_t b = 0; b < rows; ++b) {
    std::int32_t position = 0;
    for (std::int64_t t = 0; t < seq_len; ++t) {
      const auto i = static_cast<std::size_t>(b * seq_len + t);
      if (t > 0 && !docs.empty() && docs[i] != docs[i - 1]) position = 0;
      positions[i] = position++;
    }
  }
  return positions;
}

BatchInputs::BatchInputs(const Batch& batch, const BatchLimits& limits, std::string_view source)
    : batch_(batch) {
  if (!batch_.positions.defined() && batch_.tokens.defined() && batch_.tokens.rank() == 2) {
    const std::int64_t rows = batch_.tokens.size(0), seq_len = batch_.tokens.size(1);
    positions_ = document_positions(batch_.doc_ids, rows, seq_len);
    batch_.positions = Tensor::of(positions_.data(), {rows, seq_len});
  }
  check_batch_values(batch_, limits, source);
}

}  // namespace kiln::model
