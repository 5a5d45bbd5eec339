#include "data/io/line_writer.hpp"

#include <zstd.h>

#include <string>
#include <vector>

#include "trainer/core/atomic_file.hpp"
#include "trainer/core/error.hpp"

namespace kiln::data {

// Buffers bytes and hands them to the atomic file in large writes (AtomicFile writes straight
// to its descriptor, and a syscall per JSONL line would dominate curate's output time).
class LineWriter::Sink {
 public:
  explicit Sink(const std::filesystem::path& path) : file_(path) {}
  virtual ~Sink() = default;
  virtual void write(std::string_view bytes) { put(bytes.data(), bytes.size()); }
  virtual void finish() {
    flush();
    file_.commit();
  }

 protected:
  void put(const char* data, std::size_t size) {
    buffer_.append(data, size);
    if (buffer_.size() >= kFlushBytes) flush();
  }

 private:
  static constexpr std::size_t kFlushBytes = 1 << 20;
  void flush() {
    file_.write(buffer_);
    buffer_.clear();
  }

  AtomicFile file_;
  std::string buffer_;
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

LineWriter::LineWriter(const std::filesystem::path& path, int zstd_level) : path_(path) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const bool compressed = path.extension() == ".zst";
  sink_ = compressed ? std::make_unique<ZstdSink>(path, zstd_level) : std::make_unique<Sink>(path);
}

// An unclosed sink's AtomicFile removes its temporary and leaves the target untouched.
LineWriter::~LineWriter() = default;

void LineWriter::write_line(std::string_view line) {
  if (!sink_) fail("write to '{}' after it was closed", path_.string());
  sink_->write(line);
  sink_->write("\n");
  ++lines_;
}

void LineWriter::close() {
  if (!sink_) return;
  auto sink = std::move(sink_);  // closed (or abandoned, on a failure) either way
  sink->finish();
}

}  // namespace kiln::data
