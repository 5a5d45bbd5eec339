// A checkpoint's meta.json (trainer/checkpoint/checkpoint_meta.*), read as CheckpointReader and
// find_checkpoint_problem read it (nlohmann::json::parse without exceptions, then
// meta_from_json), followed by what resuming and export do with it: the stored recipe goes
// through recipe_from_json. meta_to_json of an accepted meta must be accepted again.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tests/fuzz/refusal_contract.hpp"
#include "trainer/checkpoint/checkpoint_meta.hpp"
#include "trainer/config/recipe.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  kiln::fuzz::accept_or_refuse([&] {
    const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) return;  // the readers' own refusal: "meta.json is not valid JSON"
    const auto meta = kiln::checkpoint::meta_from_json(json, "step_00000010/meta.json");
    const auto again = kiln::checkpoint::meta_from_json(kiln::checkpoint::meta_to_json(meta), "rewritten meta.json");
    kiln::fuzz::require(again.step == meta.step && again.tokens_seen == meta.tokens_seen &&
                            again.checksums == meta.checksums && again.layout == meta.layout,
                        "meta_to_json's output reads back differently");
    (void)kiln::config::recipe_from_json(meta.recipe, "step_00000010/meta.json");
  });
  return 0;
}
