#pragma once
// The records of one input file, streamed, whatever its kind (shared by `kiln prepare`'s
// DocumentReader and `kiln curate`'s RecordReader):
//   *.jsonl, *.json, *.ndjson      one record per line
//   *.zst (e.g. *.jsonl.zst)       the same, zstd-compressed, decompressed in a fixed window
//   anything else                  plain text: the whole file is one record
// Records come without their '\n'; a truncated or corrupt zstd stream is a kiln::Error naming
// the file and the line it ends after.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace kiln::data {

enum class InputFormat { Text, Jsonl, JsonlZst };

InputFormat detect_input_format(const std::filesystem::path& path);

// Every input must exist and be a readable regular file (not a directory, FIFO or device):
// checked up front, so a typo or a hostile path fails before any work. Throws kiln::Error
// naming the path.
void check_inputs_readable(const std::vector<std::filesystem::path>& inputs);

class RecordSource {
 public:
  virtual ~RecordSource() = default;
  // The next record; false at the end of the file.
  virtual bool next(std::string& record) = 0;
  const std::filesystem::path& path() const { return path_; }
  InputFormat format() const { return format_; }
  std::uint64_t line() const { return line_; }  // 1-based line of the last record

 protected:
  RecordSource(const std::filesystem::path& path, InputFormat format);
  std::filesystem::path path_;
  InputFormat format_;
  std::unique_ptr<std::ifstream> in_;
  std::uint64_t line_ = 0;
};

std::unique_ptr<RecordSource> open_record_source(const std::filesystem::path& path);

}  // namespace kiln::data
