#pragma once
// Raw records of the input files in order, each with its file and line, so curation can
// keep every field of a JSON record and name file:line in errors. Unlike the tokenizer's
// DocumentReader (which hands out only the text), this yields the record bytes untouched:
//   *.jsonl / *.json / *.ndjson   one record per non-blank line
//   *.zst                         the same, zstd-compressed (streamed in a fixed window)
//   anything else                 plain text: the whole file is one record
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/io/record_source.hpp"

namespace kiln::curate {

using RecordFormat = data::InputFormat;
inline RecordFormat record_format(const std::filesystem::path& path) { return data::detect_input_format(path); }

struct RawRecord {
  std::uint64_t ordinal = 0;  // 0-based position among all records of all inputs
  std::uint32_t source = 0;   // index of the input file
  std::uint64_t line = 0;     // 1-based line (1 for a text file)
  std::string bytes;
};

class RecordReader {
 public:
  // Every input must exist and be a readable file (checked here, before any work).
  explicit RecordReader(std::vector<std::filesystem::path> inputs);
  ~RecordReader();
  RecordReader(RecordReader&&) noexcept;
  RecordReader& operator=(RecordReader&&) noexcept;

  bool next(RawRecord& record);
  RecordFormat format(std::uint32_t source) const { return record_format(inputs_[source]); }
  const std::filesystem::path& path(std::uint32_t source) const { return inputs_[source]; }
  std::uint64_t bytes_read() const { return bytes_read_; }

 private:
  std::vector<std::filesystem::path> inputs_;
  std::size_t next_input_ = 0;
  std::unique_ptr<data::RecordSource> source_;
  std::uint64_t next_ordinal_ = 0;
  std::uint64_t bytes_read_ = 0;
};

}  // namespace kiln::curate
