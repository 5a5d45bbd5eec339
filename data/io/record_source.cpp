#include "data/io/record_source.hpp"

#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"

namespace kiln::data {

InputFormat detect_input_format(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  if (name.ends_with(".zst")) return InputFormat::JsonlZst;
  if (name.ends_with(".jsonl") || name.ends_with(".json") || name.ends_with(".ndjson")) return InputFormat::Jsonl;
  return InputFormat::Text;
}

void check_inputs_readable(const std::vector<std::filesystem::path>& inputs) {
  if (inputs.empty()) fail("no input files were given");
  for (const auto& path : inputs) {
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) fail("input '{}' is a directory; pass the files inside it", path.string());
    // A FIFO or /dev/zero would stream forever (or block) instead of ending like a corpus file.
    require_regular_file(path, "input file");
    std::ifstream probe(path, std::ios::binary);
    if (!probe) fail("input file '{}' cannot be read: {}", path.string(), std::strerror(errno));
  }
}

RecordSource::RecordSource(const std::filesystem::path& path, InputFormat format)
    : path_(path), format_(format), in_(std::make_unique<std::ifstream>(path, std::ios::binary)) {
  if (!*in_) fail("cannot open input '{}': {}", path.string(), std::strerror(errno));
}

namespace {

class WholeFile final : public RecordSource {
 public:
  explicit WholeFile(const std::filesystem::path& path) : RecordSource(path, InputFormat::Text) {}
  bool next(std::string& record) override {
    if (done_) return false;
    done_ = true;
    line_ = 1;
    record.assign(std::istreambuf_iterator<char>(*in_), std::istreambuf_iterator<char>());
    if (in_->bad()) fail("read error in '{}'", path_.string());
    return true;
  }

 private:
  bool done_ = false;
};

class PlainLines final : public RecordSource {
 public:
  explicit PlainLines(const std::filesystem::path& path) : RecordSource(path, InputFormat::Jsonl) {}
  bool next(std::string& record) override {
    if (!std::getline(*in_, record)) {
      if (in_->bad()) fail("read error in '{}' after line {}", path_.string(), line_);
      return false;
    }
    ++line_;
    return true;
  }
};

// Streams a zstd file through a fixed-size window, so a 100 GB corpus needs a few MB. Lines are
// handed out of `pending_` by offset; the consumed prefix is dropped only when more is read.
class ZstdLines final : public RecordSource {
 public:
  explicit ZstdLines(const std::filesystem::path& path)
      : RecordSource(path, InputFormat::JsonlZst), stream_(ZSTD_createDStream()),
        compressed_(ZSTD_DStreamInSize()), plain_(ZSTD_DStreamOutSize()) {
    ZSTD_initDStream(stream_);
  }
  ~ZstdLines() override { ZSTD_freeDStream(stream_); }

  bool next(std::string& record) override {
    while (true) {
      const auto newline = pending_.find('\n', consumed_ + scanned_);
      if (newline != std::string::npos) {
        record.assign(pending_, consumed_, newline - consumed_);
        consumed_ = newline + 1;
        scanned_ = 0;
        ++line_;
        return true;
      }
      scanned_ = pending_.size() - consumed_;
      if (!decompress_more()) {
        if (consumed_ == pending_.size()) return false;
        record.assign(pending_, consumed_);  // a last line without '\n'
        consumed_ = pending_.size();
        ++line_;
        return true;
      }
    }
  }

 private:
  // Appends decompressed bytes to pending_; false at the clean end of the file.
  bool decompress_more() {
    pending_.erase(0, consumed_);  // drop what was handed out, keep the partial line
    consumed_ = 0;
    while (true) {
      if (input_.pos == input_.size) {
        in_->read(compressed_.data(), static_cast<std::streamsize>(compressed_.size()));
        const auto got = static_cast<std::size_t>(in_->gcount());
        if (got == 0) {
          if (in_->bad()) fail("read error in '{}'", path_.string());
          if (!frame_complete_) {
            fail("'{}' is a truncated zstd stream (it ends inside a frame after line {})", path_.string(), line_);
          }
          return false;
        }
        input_ = {compressed_.data(), got, 0};
      }
      ZSTD_outBuffer output{plain_.data(), plain_.size(), 0};
      const std::size_t hint = ZSTD_decompressStream(stream_, &output, &input_);
      if (ZSTD_isError(hint)) {
        fail("'{}' is not valid zstd data near line {}: {}", path_.string(), line_ + 1, ZSTD_getErrorName(hint));
      }
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

std::unique_ptr<RecordSource> open_record_source(const std::filesystem::path& path) {
  switch (detect_input_format(path)) {
    case InputFormat::Text: return std::make_unique<WholeFile>(path);
    case InputFormat::Jsonl: return std::make_unique<PlainLines>(path);
    case InputFormat::JsonlZst: break;
  }
  return std::make_unique<ZstdLines>(path);
}

}  // namespace kiln::data
