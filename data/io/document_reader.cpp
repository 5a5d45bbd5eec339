#include "data/io/document_reader.hpp"

#include <simdjson.h>
#include <utf8proc.h>
#include <zstd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "trainer/core/error.hpp"

namespace kiln::data {

namespace {

bool ends_with(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Byte offset of the first invalid UTF-8 sequence; only called once simdjson said "invalid".
std::size_t first_invalid_utf8(std::string_view text) {
  std::size_t offset = 0;
  while (offset < text.size()) {
    utf8proc_int32_t codepoint = 0;
    const auto length = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + offset),
                                         static_cast<utf8proc_ssize_t>(text.size() - offset), &codepoint);
    if (length <= 0) return offset;
    offset += static_cast<std::size_t>(length);
  }
  return text.size();
}

std::size_t line_of_offset(std::string_view text, std::size_t offset) {
  return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

}  // namespace

InputFormat detect_input_format(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  if (ends_with(name, ".zst")) return InputFormat::JsonlZst;
  for (std::string_view suffix : {".jsonl", ".json", ".ndjson"}) {
    if (ends_with(name, suffix)) return InputFormat::Jsonl;
  }
  return InputFormat::Text;
}

// ---- sources: each yields the raw records of one file ---------------------------------------

class DocumentReader::Source {
 public:
  explicit Source(std::filesystem::path path) : path_(std::move(path)) {}
  virtual ~Source() = default;
  // Next record (a line for JSONL, the whole file for text); false at the end of the file.
  virtual bool next_record(std::string& record) = 0;
  const std::filesystem::path& path() const { return path_; }
  std::uint64_t line() const { return line_; }

 protected:
  std::filesystem::path path_;
  std::uint64_t line_ = 0;
};

namespace {

std::ifstream open_binary(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open input '{}': {}", path.string(), std::strerror(errno));
  return in;
}

class WholeFileSource final : public DocumentReader::Source {
 public:
  using Source::Source;
  bool next_record(std::string& record) override {
    if (done_) return false;
    done_ = true;
    line_ = 1;
    std::ifstream in = open_binary(path_);
    record.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) fail("read error in '{}'", path_.string());
    return true;
  }

 private:
  bool done_ = false;
};

class PlainLineSource final : public DocumentReader::Source {
 public:
  explicit PlainLineSource(std::filesystem::path path) : Source(std::move(path)), in_(open_binary(path_)) {}
  bool next_record(std::string& record) override {
    if (!std::getline(in_, record)) {
      if (in_.bad()) fail("read error in '{}' after line {}", path_.string(), line_);
      return false;
    }
    ++line_;
    return true;
  }

 private:
  std::ifstream in_;
};

// Streams a zstd file through a fixed-size window, so a 100 GB corpus needs a few MB.
class ZstdLineSource final : public DocumentReader::Source {
 public:
  explicit ZstdLineSource(std::filesystem::path path)
      : Source(std::move(path)), in_(open_binary(path_)), stream_(ZSTD_createDStream()),
        compressed_(ZSTD_DStreamInSize()), plain_(ZSTD_DStreamOutSize()) {
    ZSTD_initDStream(stream_);
  }
  ~ZstdLineSource() override { ZSTD_freeDStream(stream_); }

  bool next_record(std::string& record) override {
    record.clear();
    while (true) {
      const auto newline = pending_.find('\n', scan_from_);
      if (newline != std::string::npos) {
        record.assign(pending_, 0, newline);
        pending_.erase(0, newline + 1);
        scan_from_ = 0;
        ++line_;
        return true;
      }
      scan_from_ = pending_.size();
      if (!decompress_more()) {
        if (pending_.empty()) return false;
        record.swap(pending_);  // a last line without a trailing newline
        pending_.clear();
        scan_from_ = 0;
        ++line_;
        return true;
      }
    }
  }

 private:
  // Appends decompressed bytes to pending_; false at the clean end of the file.
  bool decompress_more() {
    while (true) {
      if (input_.pos == input_.size) {
        in_.read(compressed_.data(), static_cast<std::streamsize>(compressed_.size()));
        const auto got = static_cast<std::size_t>(in_.gcount());
        if (got == 0) {
          if (in_.bad()) fail("read error in '{}'", path_.string());
          if (!frame_complete_) {
            fail("'{}' is a truncated zstd stream (it ends inside a frame after line {})",
                 path_.string(), line_);
          }
          return false;
        }
        input_ = {compressed_.data(), got, 0};
      }
      ZSTD_outBuffer output{plain_.data(), plain_.size(), 0};
      const std::size_t hint = ZSTD_decompressStream(stream_, &output, &input_);
      if (ZSTD_isError(hint)) {
        fail("'{}' is not valid zstd data near line {}: {}", path_.string(), line_ + 1,
             ZSTD_getErrorName(hint));
      }
      frame_complete_ = (hint == 0);
      if (output.pos > 0) {
        pending_.append(plain_.data(), output.pos);
        return true;
      }
    }
  }

  std::ifstream in_;
  ZSTD_DStream* stream_;
  std::vector<char> compressed_;
  std::vector<char> plain_;
  ZSTD_inBuffer input_{nullptr, 0, 0};
  bool frame_complete_ = true;
  std::string pending_;
  std::size_t scan_from_ = 0;
};

}  // namespace

// ---- the reader -------------------------------------------------------------------------------

DocumentReader::DocumentReader(std::vector<std::filesystem::path> inputs, ReaderOptions options)
    : inputs_(std::move(inputs)), options_(std::move(options)) {
  if (inputs_.empty()) fail("no input files were given");
  for (const auto& path : inputs_) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) fail("input file '{}' does not exist", path.string());
    if (std::filesystem::is_directory(path, error)) {
      fail("input '{}' is a directory; pass the files inside it", path.string());
    }
    std::ifstream probe(path, std::ios::binary);
    if (!probe) fail("input file '{}' cannot be read: {}", path.string(), std::strerror(errno));
  }
}

DocumentReader::~DocumentReader() = default;
DocumentReader::DocumentReader(DocumentReader&&) noexcept = default;
DocumentReader& DocumentReader::operator=(DocumentReader&&) noexcept = default;

bool DocumentReader::open_next_source() {
  if (next_input_ == inputs_.size()) return false;
  auto path = inputs_[next_input_++];
  switch (detect_input_format(path)) {
    case InputFormat::Text: source_ = std::make_unique<WholeFileSource>(std::move(path)); break;
    case InputFormat::Jsonl: source_ = std::make_unique<PlainLineSource>(std::move(path)); break;
    case InputFormat::JsonlZst: source_ = std::make_unique<ZstdLineSource>(std::move(path)); break;
  }
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
    if (!source_->next_record(record)) {
      source_.reset();
      continue;
    }
    report_.bytes += record.size() + 1;
    const std::string where = fmt::format("{}:{}", source_->path().string(), source_->line());
    if (detect_input_format(source_->path()) == InputFormat::Text) {
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
