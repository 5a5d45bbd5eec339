#include "data/loader/token_loader.hpp"

#include <charconv>

#include "data/loader/epoch_permutation.hpp"
#include "trainer/core/error.hpp"

namespace kiln::data {

namespace {

std::uint64_t parse_hex_checksum(const TokenDataset& dataset) {
  const std::string& hex = dataset.checksums().tokens;
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(hex.data(), hex.data() + hex.size(), value, 16);
  if (error != std::errc() || end != hex.data() + hex.size()) {
    fail("token dataset '{}': attribute tokens_xxh3 '{}' is not a hex checksum",
         dataset.path().string(), hex);
  }
  return value;
}

void validate(const TokenDataset& dataset, const TokenLoaderOptions& options) {
  if (options.seq_len == 0) fail("loader: seq_len must be at least 1");
  if (options.global_batch == 0) fail("loader: global_batch must be at least 1");
  if (options.dp_size == 0) fail("loader: dp_size must be at least 1");
  if (options.global_batch % options.dp_size != 0) {
    fail("loader: global_batch {} is not divisible by dp_size {}; choose a global batch that is "
         "a multiple of the data-parallel size",
         options.global_batch, options.dp_size);
  }
  if (options.dp_rank >= options.dp_size) {
    fail("loader: dp_rank {} is out of range for dp_size {}", options.dp_rank, options.dp_size);
  }
  if (dataset.num_tokens() < options.seq_len + 1) {
    fail("token dataset '{}' holds {} tokens, fewer than one window of seq_len + 1 = {}",
         dataset.path().string(), dataset.num_tokens(), options.seq_len + 1);
  }
}

std::uint64_t json_uint(const nlohmann::json& json, const char* key) {
  if (!json.is_object() || !json.contains(key) || !json.at(key).is_number_unsigned()) {
    fail("loader state: field '{}' is missing or not an unsigned integer", key);
  }
  return json.at(key).get<std::uint64_t>();
}

}  // namespace

// ---- state ------------------------------------------------------------------------------------

nlohmann::json LoaderState::to_json() const {
  return {{"version", kVersion},         {"epoch", epoch},
          {"position", position},       {"seed", seed},
          {"seq_len", seq_len},         {"num_windows", num_windows},
          {"dataset_checksum", dataset_checksum}};
}

LoaderState LoaderState::from_json(const nlohmann::json& json) {
  const std::uint64_t version = json_uint(json, "version");
  if (version != kVersion) {
    fail("loader state: version {} is not supported (this build reads version {})", version,
         kVersion);
  }
  LoaderState state;
  state.epoch = json_uint(json, "epoch");
  state.position = json_uint(json, "position");
  state.seed = json_uint(json, "seed");
  state.seq_len = json_uint(json, "seq_len");
  state.num_windows = json_uint(json, "num_windows");
  state.dataset_checksum = json_uint(json, "dataset_checksum");
  return state;
}

std::array<std::uint64_t, 7> LoaderState::to_words() const {
  return {kVersion, epoch, position, seed, seq_len, num_windows, dataset_checksum};
}

LoaderState LoaderState::from_words(const std::array<std::uint64_t, 7>& words) {
  if (words[0] != kVersion) {
    fail("loader state: version {} is not supported (this build reads version {})", words[0],
         kVersion);
  }
  return {words[1], words[2], words[3], words[4], words[5], words[6]};
}

// ---- loader -----------------------------------------------------------------------------------

TokenLoader::TokenLoader(std::shared_ptr<const TokenDataset> dataset, TokenLoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  if (!dataset_) fail("loader: no dataset");
  validate(*dataset_, options_);
  num_windows_ = (dataset_->num_tokens() - 1) / options_.seq_len;
  dataset_checksum_ = parse_hex_checksum(*dataset_);
}

std::uint64_t TokenLoader::window_at(std::uint64_t epoch, std::uint64_t position) const {
  return EpochPermutation(num_windows_, options_.seed, epoch).at(position);
}

Batch TokenLoader::next_batch() {
  const std::uint64_t rows = rows_per_rank();
  Batch batch;
  batch.rows = rows;
  batch.seq_len = options_.seq_len;
  batch.tokens.resize(rows * (options_.seq_len + 1));
  if (dataset_->has_loss_mask()) batch.loss_mask.resize(batch.tokens.size());
  if (options_.packed) {
    batch.positions.resize(rows * options_.seq_len);
    batch.segment_offsets.push_back(0);
  }

  // This rank's first sample is dp_rank * rows samples after the global batch's first.
  std::uint64_t sample = position_ + options_.dp_rank * rows;
  std::uint64_t epoch = epoch_ + sample / num_windows_;
  sample %= num_windows_;
  EpochPermutation order(num_windows_, options_.seed, epoch);
  for (std::uint64_t row = 0; row < rows; ++row) {
    if (sample == num_windows_) {
      sample = 0;
      order = EpochPermutation(num_windows_, options_.seed, ++epoch);
    }
    const std::uint64_t window = order.at(sample++);
    batch.windows.push_back(window);
    read_row(batch, row, window);
    if (options_.packed) add_segments(batch, row, window);
  }

  const std::uint64_t consumed = position_ + options_.global_batch;
  epoch_ += consumed / num_windows_;
  position_ = consumed % num_windows_;
  return batch;
}

void TokenLoader::read_row(Batch& batch, std::uint64_t row, std::uint64_t window) const {
  const std::uint64_t width = options_.seq_len + 1;
  const std::uint64_t begin = window * options_.seq_len;
  dataset_->read_tokens(begin, std::span(batch.tokens).subspan(row * width, width));
  if (!batch.loss_mask.empty()) {
    dataset_->read_loss_mask(begin, std::span(batch.loss_mask).subspan(row * width, width));
  }
}

void TokenLoader::add_segments(Batch& batch, std::uint64_t row, std::uint64_t window) const {
  const std::uint64_t seq_len = options_.seq_len;
  const std::uint64_t begin = window * seq_len;
  // Documents starting at input positions 1 .. seq_len-1; position 0 always starts a segment.
  const auto starts = dataset_->document_starts_in(begin + 1, begin + seq_len);
  batch.segment_starts.push_back(0);
  for (const std::uint64_t start : starts) {
    // document_starts_in returns ascending starts inside the range it was asked for; anything
    // else would become a segment outside the row, so it is an error here, never an index.
    if (start <= begin || start >= begin + seq_len || start - begin <= batch.segment_starts.back()) {
      fail("token dataset '{}': document start {} does not lie in window {} ({}, {})",
           dataset_->path().string(), start, window, begin, begin + seq_len);
    }
    batch.segment_starts.push_back(static_cast<std::uint32_t>(start - begin));
  }
  batch.segment_offsets.push_back(static_cast<std::uint32_t>(batch.segment_starts.size()));

  std::uint32_t* positions = batch.positions.data() + row * seq_len;
  auto next_start = starts.begin();
  std::uint32_t position = 0;
  for (std::uint64_t i = 0; i < seq_len; ++i) {
    if (next_start != starts.end() && *next_start == begin + i) {
      position = 0;
      ++next_start;
    }
    positions[i] = position++;
  }
}

LoaderState TokenLoader::state() const {
  return {epoch_, position_, options_.seed, options_.seq_len, num_windows_, dataset_checksum_};
}

void TokenLoader::restore(const LoaderState& state) {
  const auto mismatch = [&](const char* field, std::uint64_t saved, std::uint64_t current) {
    fail("loader state does not belong to this stream: {} is {} in the state but {} here "
         "(dataset '{}'); resuming would silently change the samples trained on",
         field, saved, current, dataset_->path().string());
  };
  if (state.seed != options_.seed) mismatch("seed", state.seed, options_.seed);
  if (state.seq_len != options_.seq_len) mismatch("seq_len", state.seq_len, options_.seq_len);
  if (state.num_windows != num_windows_) {
    mismatch("num_windows", state.num_windows, num_windows_);
  }
  if (state.dataset_checksum != dataset_checksum_) {
    mismatch("dataset_checksum", state.dataset_checksum, dataset_checksum_);
  }
  if (state.position >= num_windows_) {
    fail("loader state: position {} is out of range for {} windows", state.position,
         num_windows_);
  }
  epoch_ = state.epoch;
  position_ = state.position;
}

}  // namespace kiln::data
