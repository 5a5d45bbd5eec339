#pragma once
// Streams conversations out of chat JSONL files (`kiln prepare --format chat`), one record per
// line, blank lines ignored. A bad record (malformed JSON, a missing or mistyped field, an
// unknown role, no assistant turn, invalid UTF-8) is reported as FILE:LINE: what is wrong, and
// either fails the run or is skipped and counted.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/chat/conversation.hpp"
#include "data/io/document_reader.hpp"

namespace kiln::chat {

struct ConversationReaderOptions {
  RecordFields fields;
  data::BadRecordPolicy on_bad_record = data::BadRecordPolicy::Fail;
  std::size_t max_reported_problems = 10;
};

struct ConversationReport {
  std::uint64_t records = 0;
  std::uint64_t skipped = 0;
  std::uint64_t bytes = 0;
};

class ConversationReader {
 public:
  // Every input must exist and be a .jsonl / .json / .ndjson file; checked here.
  ConversationReader(std::vector<std::filesystem::path> inputs, ConversationReaderOptions options);
  // The next conversation; false when every input is exhausted.
  bool next(Conversation& conversation);
  const ConversationReport& report() const { return report_; }

 private:
  bool next_line(std::string& line);
  void reject(const std::string& where, const std::string& why);

  std::vector<std::filesystem::path> inputs_;
  ConversationReaderOptions options_;
  ConversationReport report_;
  std::size_t next_input_ = 0;
  std::ifstream in_;
  std::string current_;
  std::uint64_t line_ = 0;
};

}  // namespace kiln::chat
