#pragma once
// Curated records go to DIR/part-00000.jsonl[.zst], DIR/part-00001..., a new shard every
// `docs_per_shard` documents; rejected ones (when kept) to DIR/rejected/part-*.jsonl. Each
// shard appears atomically (LineWriter), so a crash never leaves a half shard that looks done.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/io/line_writer.hpp"

namespace kiln::curate {

class ShardWriter {
 public:
  ShardWriter(std::filesystem::path dir, bool zstd, std::uint64_t docs_per_shard);
  void write(std::string_view line);
  // Closes the open shard; writes an empty part-00000 when nothing was written, so a reader
  // always finds at least one shard.
  void close();
  std::uint64_t documents() const { return documents_; }
  const std::vector<std::string>& shard_names() const { return names_; }

 private:
  void open_next();
  std::filesystem::path dir_;
  bool zstd_;
  std::uint64_t docs_per_shard_;
  std::unique_ptr<data::LineWriter> writer_;
  std::uint64_t documents_ = 0;
  std::uint64_t in_shard_ = 0;
  std::vector<std::string> names_;
};

// Removes part-*.jsonl[.zst] shards and rejected/ left by an earlier run into `dir`, so the
// directory only ever holds one run's output.
void clear_previous_output(const std::filesystem::path& dir);

}  // namespace kiln::curate
