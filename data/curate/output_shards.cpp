#include "data/curate/output_shards.hpp"

#include <fmt/format.h>

namespace kiln::curate {

ShardWriter::ShardWriter(std::filesystem::path dir, bool zstd, std::uint64_t docs_per_shard)
    : dir_(std::move(dir)), zstd_(zstd), docs_per_shard_(docs_per_shard) {}

void ShardWriter::open_next() {
  const std::string name = fmt::format("part-{:05d}.jsonl{}", names_.size(), zstd_ ? ".zst" : "");
  names_.push_back(name);
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

void clear_previous_output(const std::filesystem::path& dir) {
  std::error_code ignored;
  if (!std::filesystem::exists(dir)) return;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("part-") && (name.ends_with(".jsonl") || name.ends_with(".jsonl.zst"))) {
      std::filesystem::remove(entry.path(), ignored);
    }
  }
  std::filesystem::remove_all(dir / "rejected", ignored);
}

}  // namespace kiln::curate
