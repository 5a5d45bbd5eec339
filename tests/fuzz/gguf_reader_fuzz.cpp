// A GGUF file (trainer/export/gguf_reader.*): GgufReader's constructor checks header, metadata
// and tensor infos against the file; every metadata key is looked up and every tensor read, as
// the export tests read back what kiln wrote.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "tests/fuzz/refusal_contract.hpp"
#include "tests/fuzz/scratch_file.hpp"
#include "trainer/export/gguf_reader.hpp"

namespace {

bool element_count_overflows(const std::vector<std::uint64_t>& ne) {
  std::uint64_t count = 1;
  for (const auto extent : ne) {
    if (extent != 0 && count > std::numeric_limits<std::uint64_t>::max() / extent) return true;
    count *= extent;
  }
  return false;
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
      // element_count() and byte_count() wrap around: the reader would size and read the
      // tensor from wrapped numbers.
      kiln::fuzz::require(!element_count_overflows(info.ne),
                          "GgufReader accepted a tensor whose ne product overflows uint64");
      const auto bytes = reader.read_bytes(info.name);
      kiln::fuzz::require(bytes.size() == info.byte_count(), "read_bytes size differs from the tensor info");
      const auto values = reader.read_floats(info.name);
      kiln::fuzz::require(values.size() == info.element_count(), "read_floats size differs from ne");
    }
  });
  return 0;
}
