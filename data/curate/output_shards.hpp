#pragma once
// Curated records go to DIR/part-00000.jsonl[.zst], DIR/part-00001..., a new shard every
// `docs_per_shard` documents; rejected ones (when kept) to DIR/rejected/part-*.jsonl.
// A run writes its shards into a staging folder inside DIR and publishes them only once it
// has succeeded (publish_staged_output, then report.json last), so a failed or killed run
// never leaves shards or a report that look like a finished run's.
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

// Where a run into `output_dir` writes its shards before publishing them (same filesystem,
// so publishing is a rename).
std::filesystem::path staging_dir_for(const std::filesystem::path& output_dir);

// Moves every staged shard (and staged rejected/ shard) into output_dir, each one fsync'ed,
// renamed and its directory fsync'ed (kiln::publish_file), then removes the staging folder.
void publish_staged_output(const std::filesystem::path& output_dir);

// Removes part-*.jsonl[.zst] shards, rejected/, report.json and any staging folder left by an
// earlier run into `dir`, so the directory only ever holds one run's output.
void clear_previous_output(const std::filesystem::path& dir);

}  // namespace kiln::curate
