// A GGUF file (trainer/export/gguf_reader.*): GgufReader's constructor checks header, metadata
// and tensor infos against the file; every metadata key is looked up and every tensor read, as
// the export tests read back what kiln wrote.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/refusal_contract.hpp"
#include "tests/fuzz/scratch_file.hpp"
#include "trainer/export/gguf_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const kiln::fuzz::ScratchFile file("model.gguf");
  const auto& path = file.write(data, size);
  kiln::fuzz::accept_or_refuse([&] {
    const kiln::interop::GgufReader reader(path);
    for (const auto& [key, value] : reader.metadata()) {
      kiln::fuzz::require(reader.find(key) != nullptr, "find() misses a listed metadata key");
    }
    for (const auto& info : reader.tensors()) {
      const auto bytes = reader.read_bytes(info.name);
      kiln::fuzz::require(bytes.size() == info.byte_count(), "read_bytes size differs from the tensor info");
      const auto values = reader.read_floats(info.name);
      kiln::fuzz::require(values.size() == info.element_count(), "read_floats size differs from ne");
    }
  });
  return 0;
}
