// A Hugging Face config.json (trainer/export/hf_config.*), read as `kiln import` reads it:
// read_json_file, then model_config_from_hf. An accepted config is written back with
// hf_config_from_model (as `kiln export` does) and must map to the same model again.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/refusal_contract.hpp"
#include "tests/fuzz/scratch_file.hpp"
#include "trainer/export/hf_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const kiln::fuzz::ScratchFile file("config.json");
  const auto& path = file.write(data, size);
  kiln::fuzz::accept_or_refuse([&] {
    const auto model = kiln::interop::model_config_from_hf(kiln::interop::read_json_file(path), path.string());
    const auto exported = kiln::interop::hf_config_from_model(model, {}, "float32");
    const auto reimported = kiln::interop::model_config_from_hf(nlohmann::json::parse(exported.dump()),
                                                                "exported config.json");
    kiln::fuzz::require(reimported == model, "config.json written by export maps to a different model");
  });
  return 0;
}
