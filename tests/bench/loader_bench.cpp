// Loader throughput: writes a synthetic token dataset, then times sequential scans and the
// loader's shuffled windows (plain and packed). Prints one table; never gates CI.
//
//   kiln_loader_bench [million_tokens=64] [seq_len=2048] [global_batch=32] [dir=/tmp]
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset/token_dataset.hpp"
#include "data/loader/epoch_permutation.hpp"
#include "data/loader/token_loader.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void write_dataset(const fs::path& path, std::uint64_t tokens, std::uint64_t vocab) {
  kiln::data::TokenDatasetAttributes attributes;
  attributes.split = "train";
  attributes.vocab_size = vocab;
  attributes.special_ids = {{"eos", static_cast<std::uint32_t>(vocab - 1)}};
  kiln::data::TokenDatasetWriter writer(path, attributes);
  std::uint64_t state = 1;
  std::vector<std::uint32_t> document;
  while (writer.tokens_written() < tokens) {
    // Documents of 16 to 4111 tokens, like web text after tokenization.
    document.resize(16 + kiln::data::splitmix64_mix(++state) % 4096);
    for (auto& id : document) {
      id = static_cast<std::uint32_t>(kiln::data::splitmix64_mix(++state) % (vocab - 1));
    }
    document.back() = static_cast<std::uint32_t>(vocab - 1);
    writer.append_document(document);
  }
  writer.finish();
}

struct Row {
  std::string name;
  double windows_per_s;
  double megabytes_per_s;
};

void print_row(const Row& row) {
  fmt::print("{:<28} {:>14.0f} {:>12.1f}\n", row.name, row.windows_per_s, row.megabytes_per_s);
}

Row time_loader(const std::shared_ptr<const kiln::data::TokenDataset>& dataset,
                std::uint64_t seq_len, std::uint64_t global_batch, bool packed) {
  kiln::data::TokenLoaderOptions options;
  options.seq_len = seq_len;
  options.global_batch = global_batch;
  options.packed = packed;
  options.seed = 7;
  kiln::data::TokenLoader loader(dataset, options);
  const std::uint64_t batches = std::max<std::uint64_t>(4, loader.num_windows() / global_batch);
  const auto start = Clock::now();
  for (std::uint64_t i = 0; i < batches; ++i) (void)loader.next_batch();
  const double elapsed = seconds_since(start);
  const double windows = static_cast<double>(batches * global_batch);
  const double bytes = windows * static_cast<double>((seq_len + 1) * dataset->token_bits() / 8);
  return {packed ? "loader, shuffled, packed" : "loader, shuffled", windows / elapsed,
          bytes / elapsed / 1e6};
}

Row time_sequential(const kiln::data::TokenDataset& dataset, std::uint64_t seq_len) {
  std::vector<std::uint32_t> window(seq_len + 1);
  const std::uint64_t count = (dataset.num_tokens() - 1) / seq_len;
  const auto start = Clock::now();
  for (std::uint64_t w = 0; w < count; ++w) dataset.read_tokens(w * seq_len, window);
  const double elapsed = seconds_since(start);
  const double bytes =
      static_cast<double>(count * (seq_len + 1) * static_cast<std::uint64_t>(dataset.token_bits() / 8));
  return {"read_tokens, in order", static_cast<double>(count) / elapsed, bytes / elapsed / 1e6};
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t million_tokens = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 64;
  const std::uint64_t seq_len = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 2048;
  const std::uint64_t global_batch = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 32;
  const fs::path dir = argc > 4 ? fs::path(argv[4]) : fs::temp_directory_path();
  const fs::path path = dir / "kiln_loader_bench.h5";

  const auto write_start = Clock::now();
  write_dataset(path, million_tokens * 1'000'000, 50257);
  const double write_seconds = seconds_since(write_start);
  auto dataset =
      std::make_shared<const kiln::data::TokenDataset>(kiln::data::TokenDataset::open(path));
  fmt::print("dataset: {} tokens, {} documents, uint{}, {:.1f} MB; written at {:.0f} Mtok/s\n",
             dataset->num_tokens(), dataset->num_documents(), dataset->token_bits(),
             static_cast<double>(fs::file_size(path)) / 1e6,
             static_cast<double>(dataset->num_tokens()) / write_seconds / 1e6);
  fmt::print("seq_len {}, global_batch {}\n\n", seq_len, global_batch);
  fmt::print("{:<28} {:>14} {:>12}\n", "read", "windows/s", "MB/s");
  print_row(time_sequential(*dataset, seq_len));
  print_row(time_loader(dataset, seq_len, global_batch, false));
  print_row(time_loader(dataset, seq_len, global_batch, true));

  const auto verify_start = Clock::now();
  dataset->verify();
  fmt::print("\nverify: {:.0f} MB/s\n",
             static_cast<double>(fs::file_size(path)) / seconds_since(verify_start) / 1e6);
  fs::remove(path);
  return 0;
}
