// A GGUF file (trainer/export/gguf_reader.*): GgufReader's constructor checks header, metadata
// and tensor infos against the file; every metadata key is looked up and every tensor read, as
// the export tests read back what kiln wrote.
#include <cstddef>
#include <cstdint>
#include <limits>

#include "tests/fuzz/refusal_contract.hpp"
#include "tests/fuzz/scratch_file.hpp"
#include "trainer/export/gguf_reader.hpp"

namespace {

// GgufTensorInfo::element_count() and byte_count() multiply without overflow checks; this
// says whether the exact products fit in uint64.
bool counts_overflow(const kiln::interop::GgufTensorInfo& info) {
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t count = 1;
  for (const auto extent : info.ne) {
    if (extent != 0 && count > kMax / extent) return true;
    count *= extent;
  }
  const std::uint64_t bytes_per_32 =
      info.type == kiln::interop::GgmlType::q8_0 ? kiln::interop::kQ8_0BlockBytes
      : info.type == kiln::interop::GgmlType::f32 ? 128 : 64;
  return count / 32 > kMax / bytes_per_32;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const kiln::fuzz::ScratchFile file("model.gguf");
  const auto& path = file.write(data, size);
  kiln::fuzz::accept_or_refuse([&] {
    const kiln::interop::GgufReader reader(path);
    for (const auto& [key, value] : reader.metadata()) {
      kiln::fuzz::require(reader.find(key) != nullptr, "find() misses a listed metadata key");
    }
    for (const auto& info : reader.tensors()) {
      // Wrapped counts would size the output from one number and the bytes read from another.
      kiln::fuzz::require(!counts_overflow(info),
                          "GgufReader accepted a tensor whose element or byte count overflows uint64");
      const auto bytes = reader.read_bytes(info.name);
      kiln::fuzz::require(bytes.size() == info.byte_count(), "read_bytes size differs from the tensor info");
      const auto values = reader.read_floats(info.name);
      kiln::fuzz::require(values.size() == info.element_count(), "read_floats size differs from ne");
    }
  });
  return 0;
}
