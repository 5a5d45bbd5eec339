#include "data/io/line_writer.hpp"

#include <zstd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "trainer/core/error.hpp"

namespace kiln::data {

class LineWriter::Sink {
 public:
  explicit Sink(const std::filesystem::path& path) : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
    if (!out_) fail("cannot create '{}': {}", path.string(), std::strerror(errno));
  }
  virtual ~Sink() = default;
  virtual void write(std::string_view bytes) { put(bytes.data(), bytes.size()); }
  virtual void finish() {
    out_.flush();
    if (!out_) fail("write error on '{}' (disk full?)", path_.string());
  }

 protected:
  void put(const char* data, std::size_t size) {
    out_.write(data, static_cast<std::streamsize>(size));
    if (!out_) fail("write error on '{}' (disk full?)", path_.string());
  }

 private:
  std::filesystem::path path_;
  std::ofstream out_;
};

namespace {

class ZstdSink final : public LineWriter::Sink {
 public:
  ZstdSink(const std::filesystem::path& path, int level)
      : Sink(path), stream_(ZSTD_createCStream()), buffer_(ZSTD_CStreamOutSize()) {
    ZSTD_initCStream(stream_, level);
  }
  ~ZstdSink() override { ZSTD_freeCStream(stream_); }

  void write(std::string_view bytes) override {
    ZSTD_inBuffer input{bytes.data(), bytes.size(), 0};
    while (input.pos < input.size) drain([&](ZSTD_outBuffer& out) { return ZSTD_compressStream(stream_, &out, &input); });
  }
  void finish() override {
    std::size_t remaining = 1;
    while (remaining != 0) {
      drain([&](ZSTD_outBuffer& out) { return remaining = ZSTD_endStream(stream_, &out); });
    }
    Sink::finish();
  }

 private:
  template <class Step>
  void drain(Step step) {
    ZSTD_outBuffer out{buffer_.data(), buffer_.size(), 0};
    const std::size_t code = step(out);
    if (ZSTD_isError(code)) fail("zstd compression failed: {}", ZSTD_getErrorName(code));
    put(buffer_.data(), out.pos);
  }

  ZSTD_CStream* stream_;
  std::vector<char> buffer_;
};

}  // namespace

LineWriter::LineWriter(const std::filesystem::path& path, int zstd_level)
    : path_(path), temporary_(path.string() + ".tmp") {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const bool compressed = path.extension() == ".zst";
  sink_ = compressed ? std::make_unique<ZstdSink>(temporary_, zstd_level) : std::make_unique<Sink>(temporary_);
}

LineWriter::~LineWriter() {
  if (sink_) {
    sink_.reset();
    std::error_code ignored;
    std::filesystem::remove(temporary_, ignored);
  }
}

void LineWriter::write_line(std::string_view line) {
  if (!sink_) fail("write to '{}' after it was closed", path_.string());
  sink_->write(line);
  sink_->write("\n");
  ++lines_;
}

void LineWriter::close() {
  if (!sink_) return;
  sink_->finish();
  sink_.reset();
  std::filesystem::rename(temporary_, path_);
}

}  // namespace kiln::data
