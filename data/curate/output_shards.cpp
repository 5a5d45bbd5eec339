#include "data/curate/output_shards.hpp"

#include <fmt/format.h>

#include "trainer/core/atomic_file.hpp"

namespace kiln::curate {

namespace fs = std::filesystem;

namespace {

bool is_shard_name(const std::string& name) {
  return name.starts_with("part-") && (name.ends_with(".jsonl") || name.ends_with(".jsonl.zst"));
}

// Publishes the finished shards of staged/ into target/ (a folder of shards).
void publish_shards(const fs::path& staged, const fs::path& target) {
  if (!fs::is_directory(staged)) return;
  fs::create_directories(target);
  for (const auto& entry : fs::directory_iterator(staged)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && is_shard_name(name)) publish_file(entry.path(), target / name);
  }
}

}  // namespace

ShardWriter::ShardWriter(fs::path dir, bool zstd, std::uint64_t docs_per_shard)
    : dir_(std::move(dir)), zstd_(zstd), docs_per_shard_(docs_per_shard) {}

void ShardWriter::open_next() {
  const std::string name = fmt::format("part-{:05d}.jsonl{}", names_.size(), zstd_ ? ".zst" : "");
  names_.push_back(name);
  fs::create_directories(dir_);
  writer_ = std::make_unique<data::LineWriter>(dir_ / name);
  in_shard_ = 0;
}

void ShardWriter::write(std::string_view line) {
  if (!writer_ || in_shard_ == docs_per_shard_) {
    if (writer_) writer_->close();
    open_next();
  }
  writer_->write_line(line);
  ++in_shard_;
  ++documents_;
}

void ShardWriter::close() {
  if (!writer_) open_next();
  writer_->close();
  writer_.reset();
}

fs::path staging_dir_for(const fs::path& output_dir) { return output_dir / ".curate-staging"; }

void publish_staged_output(const fs::path& output_dir) {
  const fs::path staging = staging_dir_for(output_dir);
  publish_shards(staging / "rejected", output_dir / "rejected");
  publish_shards(staging, output_dir);
  fs::remove_all(staging);
}

void clear_previous_output(const fs::path& dir) {
  std::error_code ignored;
  if (!fs::exists(dir)) return;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (is_shard_name(name) || name == "report.json" || name == "report.json.tmp") fs::remove(entry.path(), ignored);
  }
  fs::remove_all(dir / "rejected", ignored);
  fs::remove_all(staging_dir_for(dir), ignored);
}

}  // namespace kiln::curate
