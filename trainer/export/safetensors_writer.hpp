#pragma once
// Writes one .safetensors file while holding one tensor at a time: the header (every name,
// dtype, shape and offset) is laid out from the declared entries, then the tensors are
// streamed in declaration order. The file goes through kiln::AtomicFile: it appears under
// PATH only when finish() succeeds whole (trainer/core/atomic_file.hpp).
//
//   SafetensorsWriter writer(path, {{"wte.weight", SafetensorsDtype::F32, {V, C}}, ...});
//   writer.write_floats("wte.weight", values);   // converted to the entry's dtype
//   writer.finish();
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/core/atomic_file.hpp"
#include "trainer/export/safetensors_dtype.hpp"

namespace kiln::interop {

struct SafetensorsEntry {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::F32;
  std::vector<std::uint64_t> shape;
  std::uint64_t byte_count() const;
};

class SafetensorsWriter {
 public:
  SafetensorsWriter(std::filesystem::path path, std::vector<SafetensorsEntry> entries,
                    const std::map<std::string, std::string>& metadata = {});
  // Destroyed without finish(): the temporary file is removed, PATH untouched.
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  // The next declared tensor, by name (a check that the caller follows the declared order).
  void write_bytes(std::string_view name, std::span<const std::byte> bytes);
  void write_floats(std::string_view name, std::span<const float> values);
  void finish();

 private:
  const SafetensorsEntry& expect_next(std::string_view name, std::uint64_t byte_count) const;

  std::filesystem::path path_;
  std::vector<SafetensorsEntry> entries_;
  std::size_t next_ = 0;
  std::optional<AtomicFile> out_;  // empty once finished
};

// The header JSON (padded with spaces to a multiple of 8 bytes, as the reference writer does)
// for entries stored back to back in the given order.
std::string safetensors_header(const std::vector<SafetensorsEntry>& entries,
                               const std::map<std::string, std::string>& metadata);

}  // namespace kiln::interop
