#pragma once
// Streams documents out of the corpus files users hand to `kiln prepare` (and later
// `kiln curate`): plain text, JSONL and zstd-compressed JSONL. Nothing is loaded whole.
//
//   *.jsonl, *.json, *.ndjson      one JSON object per line; the text is in `text_field`
//   *.jsonl.zst, *.json.zst, *.zst the same, zstd-compressed (streamed)
//   anything else                  plain UTF-8 text; the whole file is one document
//
// A bad record (malformed JSON, a missing or non-string text field, invalid UTF-8) is
// reported with its file and line, and either fails the run or is skipped and counted.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace kiln::data {

enum class InputFormat { Text, Jsonl, JsonlZst };
enum class BadRecordPolicy { Fail, Skip };

InputFormat detect_input_format(const std::filesystem::path& path);

struct Document {
  std::string text;
  std::string source;      // file it came from
  std::uint64_t line = 0;  // 1-based line of the record (1 for a text file)
};

struct ReaderOptions {
  std::string text_field = "text";
  BadRecordPolicy on_bad_record = BadRecordPolicy::Fail;
  std::size_t max_reported_problems = 10;  // skipped records printed to stderr; all are counted
};

struct ReaderReport {
  std::uint64_t documents = 0;
  std::uint64_t skipped = 0;
  std::uint64_t bytes = 0;  // uncompressed bytes read
};

class DocumentReader {
 public:
  // Every input must exist and be readable; checked here so a typo fails before any work.
  DocumentReader(std::vector<std::filesystem::path> inputs, ReaderOptions options);
  ~DocumentReader();
  DocumentReader(DocumentReader&&) noexcept;
  DocumentReader& operator=(DocumentReader&&) noexcept;

  // Fills `document` with the next one; false when every input is exhausted.
  bool next(Document& document);
  const ReaderReport& report() const { return report_; }

  class Source;  // one input file's records; defined in the .cpp

 private:
  bool open_next_source();
  void reject(const std::string& where, const std::string& why);

  std::vector<std::filesystem::path> inputs_;
  ReaderOptions options_;
  ReaderReport report_;
  std::size_t next_input_ = 0;
  std::unique_ptr<Source> source_;
};

}  // namespace kiln::data
