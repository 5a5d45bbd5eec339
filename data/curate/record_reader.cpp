#include "data/curate/record_reader.hpp"

#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "trainer/core/error.hpp"

namespace kiln::curate {

RecordFormat record_format(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  if (name.ends_with(".zst")) return RecordFormat::JsonlZst;
  if (name.ends_with(".jsonl") || name.ends_with(".json") || name.ends_with(".ndjson")) return RecordFormat::Jsonl;
  return RecordFormat::Text;
}

class RecordReader::LineSource {
 public:
  explicit LineSource(const std::filesystem::path& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) fail("cannot open input '{}': {}", path.string(), std::strerror(errno));
  }
  virtual ~LineSource() = default;
  // Next line (without '\n'); false at the end of the file.
  virtual bool next_line(std::string& line) = 0;
  std::uint64_t line_number() const { return line_; }

 protected:
  std::filesystem::path path_;
  std::ifstream in_;
  std::uint64_t line_ = 0;
};

namespace {

class WholeFile final : public RecordReader::LineSource {
 public:
  using LineSource::LineSource;
  bool next_line(std::string& line) override {
    if (done_) return false;
    done_ = true;
    line_ = 1;
    line.assign(std::istreambuf_iterator<char>(in_), std::istreambuf_iterator<char>());
    if (in_.bad()) fail("read error in '{}'", path_.string());
    return true;
  }

 private:
  bool done_ = false;
};

class PlainLines final : public RecordReader::LineSource {
 public:
  using LineSource::LineSource;
  bool next_line(std::string& line) override {
    if (!std::getline(in_, line)) {
      if (in_.bad()) fail("read error in '{}' after line {}", path_.string(), line_);
      return false;
    }
    ++line_;
    return true;
  }
};

class ZstdLines final : public RecordReader::LineSource {
 public:
  explicit ZstdLines(const std::filesystem::path& path)
      : LineSource(path), stream_(ZSTD_createDStream()), compressed_(ZSTD_DStreamInSize()), plain_(ZSTD_DStreamOutSize()) {
    ZSTD_initDStream(stream_);
  }
  ~ZstdLines() override { ZSTD_freeDStream(stream_); }

  bool next_line(std::string& line) override {
    while (true) {
      const auto newline = pending_.find('\n', consumed_ + scanned_);
      if (newline != std::string::npos) {
        line.assign(pending_, consumed_, newline - consumed_);
        consumed_ = newline + 1;
        scanned_ = 0;
        ++line_;
        return true;
      }
      scanned_ = pending_.size() - consumed_;
      if (!decompress_more()) {
        if (consumed_ == pending_.size()) return false;
        line.assign(pending_, consumed_);  // a last line without '\n'
        consumed_ = pending_.size();
        ++line_;
        return true;
      }
    }
  }

 private:
  bool decompress_more() {
    pending_.erase(0, consumed_);  // drop what was handed out, keep the partial line
    consumed_ = 0;
    while (true) {
      if (input_.pos == input_.size) {
        in_.read(compressed_.data(), static_cast<std::streamsize>(compressed_.size()));
        const auto got = static_cast<std::size_t>(in_.gcount());
        if (got == 0) {
          if (in_.bad()) fail("read error in '{}'", path_.string());
          if (!frame_complete_) fail("'{}' is a truncated zstd stream (it ends inside a frame after line {})", path_.string(), line_);
          return false;
        }
        input_ = {compressed_.data(), got, 0};
      }
      ZSTD_outBuffer output{plain_.data(), plain_.size(), 0};
      const std::size_t hint = ZSTD_decompressStream(stream_, &output, &input_);
      if (ZSTD_isError(hint)) fail("'{}' is not valid zstd data near line {}: {}", path_.string(), line_ + 1, ZSTD_getErrorName(hint));
      frame_complete_ = hint == 0;
      if (output.pos > 0) {
        pending_.append(plain_.data(), output.pos);
        return true;
      }
    }
  }

  ZSTD_DStream* stream_;
  std::vector<char> compressed_;
  std::vector<char> plain_;
  ZSTD_inBuffer input_{nullptr, 0, 0};
  bool frame_complete_ = true;
  std::string pending_;
  std::size_t consumed_ = 0;
  std::size_t scanned_ = 0;
};

}  // namespace

RecordReader::RecordReader(std::vector<std::filesystem::path> inputs) : inputs_(std::move(inputs)) {
  if (inputs_.empty()) fail("no input files were given");
  for (const auto& path : inputs_) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) fail("input file '{}' does not exist", path.string());
    if (std::filesystem::is_directory(path, error)) fail("input '{}' is a directory; pass the files inside it", path.string());
    std::ifstream probe(path, std::ios::binary);
    if (!probe) fail("input file '{}' cannot be read: {}", path.string(), std::strerror(errno));
  }
}

RecordReader::~RecordReader() = default;
RecordReader::RecordReader(RecordReader&&) noexcept = default;
RecordReader& RecordReader::operator=(RecordReader&&) noexcept = default;

bool RecordReader::next(RawRecord& record) {
  while (true) {
    if (!source_) {
      if (next_input_ == inputs_.size()) return false;
      const auto& path = inputs_[next_input_++];
      switch (record_format(path)) {
        case RecordFormat::Text: source_ = std::make_unique<WholeFile>(path); break;
        case RecordFormat::Jsonl: source_ = std::make_unique<PlainLines>(path); break;
        case RecordFormat::JsonlZst: source_ = std::make_unique<ZstdLines>(path); break;
      }
    }
    if (!source_->next_line(record.bytes)) {
      source_.reset();
      continue;
    }
    bytes_read_ += record.bytes.size() + 1;
    const auto source = static_cast<std::uint32_t>(next_input_ - 1);
    if (record_format(inputs_[source]) != RecordFormat::Text) {
      if (!record.bytes.empty() && record.bytes.back() == '\r') record.bytes.pop_back();
      if (record.bytes.find_first_not_of(" \t") == std::string::npos) continue;  // blank line
    }
    record.source = source;
    record.line = source_->line_number();
    record.ordinal = next_ordinal_++;
    return true;
  }
}

}  // namespace kiln::curate
