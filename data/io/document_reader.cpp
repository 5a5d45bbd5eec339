#include "data/io/document_reader.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>

#include "trainer/core/error.hpp"
#include "trainer/core/utf8.hpp"

namespace kiln::data {

namespace {

std::size_t line_of_offset(std::string_view text, std::size_t offset) {
  return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

std::size_t count_key(simdjson::dom::object object, std::string_view key) {
  std::size_t count = 0;
  for (const auto field : object) count += field.key == key ? 1 : 0;
  return count;
}

}  // namespace

// ---- the reader -------------------------------------------------------------------------------

DocumentReader::DocumentReader(std::vector<std::filesystem::path> inputs, ReaderOptions options)
    : inputs_(std::move(inputs)), options_(std::move(options)) {
  check_inputs_readable(inputs_);
}

DocumentReader::~DocumentReader() = default;
DocumentReader::DocumentReader(DocumentReader&&) noexcept = default;
DocumentReader& DocumentReader::operator=(DocumentReader&&) noexcept = default;

bool DocumentReader::open_next_source() {
  if (next_input_ == inputs_.size()) return false;
  source_ = open_record_source(inputs_[next_input_++]);
  return true;
}

void DocumentReader::reject(const std::string& where, const std::string& why) {
  const std::string message = fmt::format("{}: {}", where, why);
  if (options_.on_bad_record == BadRecordPolicy::Fail) {
    fail("{} (pass --skip-bad-records to skip such records and count them)", message);
  }
  if (report_.skipped < options_.max_reported_problems) {
    std::fprintf(stderr, "kiln: skipping %s\n", message.c_str());
  }
  ++report_.skipped;
}

bool DocumentReader::next(Document& document) {
  thread_local simdjson::dom::parser parser;
  std::string record;
  while (source_ || open_next_source()) {
    if (!source_->next(record)) {
      source_.reset();
      continue;
    }
    report_.bytes += record.size() + 1;
    const std::string where = fmt::format("{}:{}", source_->path().string(), source_->line());
    if (source_->format() == InputFormat::Text) {
      if (!simdjson::validate_utf8(record.data(), record.size())) {
        const auto offset = first_invalid_utf8(record);
        reject(fmt::format("{}:{}", source_->path().string(), line_of_offset(record, offset)),
               fmt::format("invalid UTF-8 at byte offset {}", offset));
        continue;
      }
      document = {std::move(record), source_->path().string(), 1};
      ++report_.documents;
      return true;
    }
    if (record.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
    simdjson::dom::element root;
    if (auto error = parser.parse(record).get(root)) {
      reject(where, fmt::format("malformed JSON ({})", simdjson::error_message(error)));
      continue;
    }
    if (!root.is_object()) {
      reject(where, "expected a JSON object per line");
      continue;
    }
    if (const std::size_t copies = count_key(root.get_object().value_unsafe(), options_.text_field); copies > 1) {
      // JSON leaves duplicate keys undefined; taking either copy would silently train on a guess.
      reject(where, fmt::format("field \"{}\" appears {} times; expected it once", options_.text_field, copies));
      continue;
    }
    std::string_view text;
    auto field = root[options_.text_field];
    if (field.error() == simdjson::NO_SUCH_FIELD) {
      reject(where, fmt::format("no \"{}\" field (choose the field with --text-field)", options_.text_field));
      continue;
    }
    if (field.get(text)) {
      reject(where, fmt::format("field \"{}\" is not a string", options_.text_field));
      continue;
    }
    document = {std::string(text), source_->path().string(), source_->line()};
    ++report_.documents;
    return true;
  }
  return false;
}

}  // namespace kiln::data
