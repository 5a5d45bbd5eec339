#pragma once
// Writes text lines (JSONL records) to a file, zstd-compressed when the name ends in ".zst".
// Output goes through kiln::AtomicFile (trainer/core/atomic_file.hpp): it appears under its
// real name only when close() succeeds, so an interrupted or failed run (disk full) never
// leaves a truncated file that looks finished.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

namespace kiln::data {

class LineWriter {
 public:
  explicit LineWriter(const std::filesystem::path& path, int zstd_level = 3);
  ~LineWriter();  // without close(): the temporary file is removed
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  // Appends `line` and a newline. The line must not contain a newline itself.
  void write_line(std::string_view line);
  void close();
  std::uint64_t lines_written() const { return lines_; }

  class Sink;

 private:
  std::filesystem::path path_;
  std::unique_ptr<Sink> sink_;
  std::uint64_t lines_ = 0;
};

}  // namespace kiln::data
