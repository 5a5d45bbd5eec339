#pragma once
// Batches of fixed-length training windows from a token dataset (DESIGN.md §8).
//
// Samples. The dataset's documents form one token stream. Window w is the seq_len + 1 tokens
//   tokens[w * seq_len, w * seq_len + seq_len + 1), w in [0, num_windows),
//   num_windows = (num_tokens - 1) / seq_len,
// so consecutive windows share one token: the last target of w is the first input of w + 1.
//
// Global order. Epoch e visits every window once, in the order EpochPermutation(num_windows,
// seed, e). Epochs follow each other back to back into one infinite stream of samples; a global
// batch is the next global_batch samples of that stream and may straddle an epoch boundary.
// Nothing in the stream depends on dp.
//
// Data parallelism. dp rank r takes rows [r * B / dp, (r + 1) * B / dp) of every global batch
// (B = global_batch), so the dp ranks' batches concatenated in rank order are the dp = 1 batch.
//
// State. (epoch, position): position = samples of `epoch` consumed by all ranks together. It
// is the same on every rank, goes into the checkpoint and restores the stream exactly, also
// under another dp_size or global_batch. It also records what identifies the stream (seed,
// seq_len, num_windows, the dataset's token checksum); restore() refuses a state from another
// stream rather than silently train on different data.
#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset/token_dataset.hpp"

namespace kiln::data {

struct TokenLoaderOptions {
  std::uint64_t seq_len = 0;       // tokens the model sees per row
  std::uint64_t global_batch = 0;  // sequences per optimizer step, all dp ranks together
  std::uint64_t dp_rank = 0;
  std::uint64_t dp_size = 1;       // must divide global_batch
  std::uint64_t seed = 0;
  bool packed = false;             // also return document boundaries and positions
};

struct LoaderState {
  static constexpr std::uint64_t kVersion = 1;

  std::uint64_t epoch = 0;
  std::uint64_t position = 0;  // < num_windows
  // Identity of the stream.
  std::uint64_t seed = 0;
  std::uint64_t seq_len = 0;
  std::uint64_t num_windows = 0;
  std::uint64_t dataset_checksum = 0;  // the dataset's tokens_xxh3

  nlohmann::json to_json() const;
  // Throws kiln::Error naming the missing or mistyped field.
  static LoaderState from_json(const nlohmann::json& json);
  // Compact form for an HDF5 attribute: {kVersion, epoch, position, seed, seq_len,
  // num_windows, dataset_checksum}.
  std::array<std::uint64_t, 7> to_words() const;
  static LoaderState from_words(const std::array<std::uint64_t, 7>& words);

  friend bool operator==(const LoaderState&, const LoaderState&) = default;
};

// One dp rank's share of a global batch. All arrays are row-major.
//   tokens      [rows, seq_len + 1]  inputs are [:, :seq_len], targets [:, 1:]
//   loss_mask   [rows, seq_len + 1]  aligned with tokens (a target's mask is at its index);
//                                    empty when the dataset has no /loss_mask
//   windows     [rows]               the window index of each row
// Packed mode (options.packed), over the seq_len input positions of each row:
//   segment_offsets [rows + 1]       row r's segments are segment_starts[segment_offsets[r]
//                                    .. segment_offsets[r + 1]) (a CSR, like varlen attention's
//                                    cu_seqlens per row)
//   segment_starts                   positions in [0, seq_len) where a segment starts, ascending;
//                                    each row's first is 0 (a window may begin mid-document),
//                                    the others are the documents that begin inside the row
//   positions   [rows, seq_len]      index of each input token within its segment (restarts at
//                                    0 at every segment start): the position ids for RoPE or
//                                    learned positions when attention must not cross documents
struct Batch {
  std::uint64_t rows = 0;
  std::uint64_t seq_len = 0;
  std::vector<std::uint32_t> tokens;
  std::vector<std::uint8_t> loss_mask;
  std::vector<std::uint64_t> windows;
  std::vector<std::uint32_t> segment_offsets;
  std::vector<std::uint32_t> segment_starts;
  std::vector<std::uint32_t> positions;
};

class TokenLoader {
 public:
  // Throws kiln::Error for impossible options (zero sizes, dp_size not dividing global_batch,
  // dp_rank >= dp_size) and for a dataset smaller than one window, naming its file.
  TokenLoader(std::shared_ptr<const TokenDataset> dataset, TokenLoaderOptions options);

  // The next global batch's rows for this rank; advances the state by global_batch samples.
  // Reads only the windows it returns.
  Batch next_batch();

  LoaderState state() const;
  void restore(const LoaderState& state);

  std::uint64_t num_windows() const { return num_windows_; }
  std::uint64_t rows_per_rank() const { return options_.global_batch / options_.dp_size; }
  const TokenLoaderOptions& options() const { return options_; }
  const TokenDataset& dataset() const { return *dataset_; }

  // The window at `position` of `epoch` in the global order (for tests and tools).
  std::uint64_t window_at(std::uint64_t epoch, std::uint64_t position) const;

 private:
  void read_row(Batch& batch, std::uint64_t row, std::uint64_t window) const;
  void add_segments(Batch& batch, std::uint64_t row, std::uint64_t window) const;

  std::shared_ptr<const TokenDataset> dataset_;
  TokenLoaderOptions options_;
  std::uint64_t num_windows_ = 0;
  std::uint64_t dataset_checksum_ = 0;
  std::uint64_t epoch_ = 0;
  std::uint64_t position_ = 0;
};

}  // namespace kiln::data
