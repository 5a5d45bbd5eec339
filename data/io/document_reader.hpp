#pragma once
// Streams documents (their text only) out of the corpus files users hand to `kiln prepare`
// and `kiln tokenizer train`: plain text, JSONL and zstd-compressed JSONL, read through
// data/io/record_source.hpp (which `kiln curate` shares). Nothing is loaded whole.
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

#include "data/io/record_source.hpp"

namespace kiln::data {

enum class BadRecordPolicy { Fail, Skip };

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

 private:
  bool open_next_source();
  void reject(const std::string& where, const std::string& why);

  std::vector<std::filesystem::path> inputs_;
  ReaderOptions options_;
  ReaderReport report_;
  std::size_t next_input_ = 0;
  std::unique_ptr<RecordSource> source_;
};

}  // namespace kiln::data
