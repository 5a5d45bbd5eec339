// A .safetensors file (trainer/export/safetensors_reader.*): the header is parsed and validated
// by SafetensorsReader's constructor, as `kiln import` opens each shard; every tensor is then
// read as import reads it (weights as float32, other dtypes as bytes).
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/refusal_contract.hpp"
#include "tests/fuzz/scratch_file.hpp"
#include "trainer/export/safetensors_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const kiln::fuzz::ScratchFile file("model.safetensors");
  const auto& path = file.write(data, size);
  kiln::fuzz::accept_or_refuse([&] {
    const kiln::interop::SafetensorsReader reader(path);
    (void)reader.metadata();
    for (const auto& info : reader.tensors()) {
      kiln::fuzz::require(reader.find(info.name) == &info, "find() does not return the listed tensor");
      const auto bytes = reader.read_bytes(info.name);
      kiln::fuzz::require(bytes.size() == info.end - info.begin, "read_bytes size differs from the header's range");
      if (kiln::interop::is_weight_dtype(info.dtype)) {
        const auto values = reader.read_floats(info.name);
        kiln::fuzz::require(values.size() == info.element_count(), "read_floats size differs from the shape");
      }
    }
  });
  return 0;
}
