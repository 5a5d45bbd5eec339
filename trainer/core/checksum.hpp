#pragma once
// XXH3-64 checksums for shards, checkpoints and tokenizer identity (DESIGN.md §3).
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace kiln {

std::uint64_t xxh3_64(std::string_view bytes);
std::uint64_t xxh3_64(std::span<const std::byte> bytes);
// Streams the file in blocks; throws kiln::Error naming the path when it cannot be read.
std::uint64_t xxh3_64_file(const std::filesystem::path& path);
// 16 lowercase hex digits, the form kiln writes into files and prints.
std::string to_hex(std::uint64_t value);

// Incremental form for data that arrives in pieces.
class Xxh3Stream {
 public:
  Xxh3Stream();
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void update(const void* data, std::size_t size);
  std::uint64_t digest() const;

 private:
  void* state_;
};

}  // namespace kiln
