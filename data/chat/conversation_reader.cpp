#include "data/chat/conversation_reader.hpp"

#include <fmt/format.h>

#include <cstdio>

#include "trainer/core/error.hpp"

namespace kiln::chat {

namespace {

// Offset of the first byte that breaks UTF-8, or npos (JSON strings must be valid UTF-8, and
// nlohmann would otherwise fail later with a less helpful message).
std::size_t first_invalid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const std::size_t length = byte < 0x80 ? 1 : (byte >> 5) == 0x6 ? 2 : (byte >> 4) == 0xe ? 3 : (byte >> 3) == 0x1e ? 4 : 0;
    if (length == 0 || i + length > text.size()) return i;
    for (std::size_t k = 1; k < length; ++k) {
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return i;
    }
    i += length;
  }
  return std::string_view::npos;
}

}  // namespace

ConversationReader::ConversationReader(std::vector<std::filesystem::path> inputs, ConversationReaderOptions options)
    : inputs_(std::move(inputs)), options_(std::move(options)) {
  if (inputs_.empty()) fail("no chat input files given");
  data::check_inputs_readable(inputs_);
  for (const auto& input : inputs_) {
    if (data::detect_input_format(input) != data::InputFormat::Jsonl) {
      fail("chat input '{}' must be JSONL (.jsonl, .json or .ndjson), one conversation per line", input.string());
    }
  }
}

bool ConversationReader::next_line(std::string& line) {
  while (true) {
    if (in_.is_open() && std::getline(in_, line)) {
      ++line_;
      report_.bytes += line.size() + 1;
      return true;
    }
    if (in_.is_open() && in_.bad()) fail("read error in '{}'", current_);
    if (next_input_ == inputs_.size()) return false;
    in_ = std::ifstream(inputs_[next_input_]);
    current_ = inputs_[next_input_++].string();
    line_ = 0;
    if (!in_) fail("cannot open '{}'", current_);
  }
}

void ConversationReader::reject(const std::string& where, const std::string& why) {
  if (options_.on_bad_record == data::BadRecordPolicy::Fail) throw Error(fmt::format("{}: {}", where, why));
  if (report_.skipped++ < options_.max_reported_problems) {
    std::fprintf(stderr, "kiln: skipping %s: %s\n", where.c_str(), why.c_str());
  }
}

bool ConversationReader::next(Conversation& conversation) {
  std::string line;
  while (next_line(line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", current_, line_);
    if (const auto bad = first_invalid_utf8(line); bad != std::string_view::npos) {
      reject(where, fmt::format("invalid UTF-8 at byte {}", bad));
      continue;
    }
    try {
      conversation = conversation_from_json(nlohmann::json::parse(line), where, options_.fields);
    } catch (const nlohmann::json::parse_error& error) {
      reject(where, fmt::format("malformed JSON: {}", error.what()));
      continue;
    } catch (const Error& error) {
      // conversation_from_json names `where` itself; keep only its reason.
      const std::string message = error.what();
      reject(where, message.substr(std::min(message.size(), where.size() + 2)));
      continue;
    }
    ++report_.records;
    return true;
  }
  return false;
}

}  // namespace kiln::chat
