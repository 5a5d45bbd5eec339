#pragma once
// The model's input for one micro-batch, and the one way to build it checked and complete.
//
// The model takes a Batch as it is: it checks shapes and dtypes (cheap, no element read) but
// never reads an index tensor on the host (on a GPU those tensors live on the device and
// only the embedding / cross-entropy kernels read them). Value checks (ids inside the
// vocabulary) and positions are host work done once per micro-batch, before the model, by
// check_batch_values and document_positions: MicroBatch (training, eval) and BatchInputs
// (every other caller) both go through them.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/ops/attention.hpp"
#include "kernels/tensor.hpp"
#include "parallel/context_parallel.hpp"
#include "trainer/model/model_config.hpp"

namespace kiln::model {

// One micro-batch. Index tensors may be I32, U32, I64 or U16; all are [B, T] and contiguous.
// The views must stay valid until backward() returns.
struct Batch {
  Tensor tokens;     // ids < vocab_size
  Tensor targets;    // next-token ids; undefined = forward only (logits, no loss)
  Tensor loss_mask;  // u8, non-zero = the token counts (SFT); undefined = every token counts
  Tensor doc_ids;    // packed sequences: runs of equal ids are documents; attention never
                     // crosses a run boundary. Undefined = one document per row.
  Tensor positions;  // required: 0..T-1 per row, restarting at each document of doc_ids
                     // (document_positions), or the caller's own (KV-cache prefixes)
  // Host copy of doc_ids' runs, for cuDNN attention (it takes documents as ragged offsets
  // and lengths the host computes): DeviceBatch::upload fills it on a CUDA device.
  std::shared_ptr<const ops::DocumentRuns> documents;
  // Under context parallelism: how the whole sequences were cut (this batch holds this rank's
  // two chunks of each row), for ring attention. Null otherwise.
  std::shared_ptr<const parallel::ContextChunks> context;
};

// What a batch's values must satisfy for one model.
struct BatchLimits {
  std::int64_t vocab_size = 0;
  std::int64_t max_seq_len = 0;
  static BatchLimits of(const ModelConfig& config) {
    return {config.vocab_size, config.max_seq_len};
  }
};

// Reads the index tensors on the host and refuses, naming `source` (the dataset or caller
// and the micro-batch), a token id or counted target outside [0, vocab_size), a position
// outside [0, max_seq_len), a loss mask that is not u8, a missing positions tensor, a
// sequence longer than max_seq_len, or tensors whose shapes differ from batch.tokens.
void check_batch_values(const Batch& batch, const BatchLimits& limits, std::string_view source);

// Positions [rows * seq_len]: 0..seq_len-1 per row, restarting at 0 wherever doc_ids
// changes (packed rows). doc_ids undefined: one document per row.
std::vector<std::int32_t> document_positions(Tensor doc_ids, std::int64_t rows,
                                             std::int64_t seq_len);

// A Batch checked against a model and given its positions (built from doc_ids unless the
// caller passed its own): what sequence/document scoring, golden tests and benchmarks hand
// to the model. Owns the positions; the other views must outlive it.
class BatchInputs {
 public:
  BatchInputs(const Batch& batch, const BatchLimits& limits, std::string_view source);
  BatchInputs(const BatchInputs&) = delete;
  BatchInputs& operator=(const BatchInputs&) = delete;
  BatchInputs(BatchInputs&&) = default;  // the positions buffer moves with its vector
  BatchInputs& operator=(BatchInputs&&) = default;

  const Batch& batch() const { return batch_; }

 private:
  std::vector<std::int32_t> positions_;
  Batch batch_;
};

}  // namespace kiln::model
