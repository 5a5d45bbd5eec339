#pragma once
// Little binary framing for what curation ships between passes and ranks (spill files,
// MPI messages): fixed-width integers and length-prefixed strings, host byte order (every
// rank of a job runs the same binary on the same kind of machine).
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "trainer/core/error.hpp"

namespace kiln::curate {

class ByteWriter {
 public:
  template <class T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  void put_string(std::string_view text) {
    put<std::uint64_t>(text.size());
    bytes_.append(text);
  }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}
  template <class T>
  T get() {
    T value;
    need(sizeof(T));
    std::memcpy(&value, bytes_.data() + offset_, sizeof(T));
    offset_ += sizeof(T);
    return value;
  }
  std::string get_string() {
    const auto size = get<std::uint64_t>();
    need(size);
    std::string text(bytes_.substr(offset_, size));
    offset_ += size;
    return text;
  }
  bool done() const { return offset_ == bytes_.size(); }

 private:
  void need(std::size_t size) const {
    if (offset_ + size > bytes_.size()) fail("curate: truncated internal message or spill file");
  }
  std::string_view bytes_;
  std::size_t offset_ = 0;
};

}  // namespace kiln::curate
