#include "trainer/config/recipe.hpp"

#include "trainer/config/recipe_fields.hpp"
#include "trainer/core/error.hpp"

namespace kiln::config {

std::string_view to_string(ModelFamily family) { return enum_name(family); }
std::string_view to_string(RopeScalingType type) { return enum_name(type); }
std::string_view to_string(Device device) { return enum_name(device); }
std::string_view to_string(AttentionBackend backend) { return enum_name(backend); }
std::string_view to_string(Recompute recompute) { return enum_name(recompute); }
std::string_view to_string(Precision precision) { return enum_name(precision); }

void resolve_vocab_size(Recipe& recipe, std::int64_t tokenizer_vocab_size,
                        std::string_view tokenizer_path) {
  auto& vocab = recipe.model.vocab_size;
  if (vocab == 0) {
    vocab = tokenizer_vocab_size;
    return;
  }
  if (vocab < tokenizer_vocab_size) {
    fail("recipe: model.vocab_size = {} is smaller than the {} tokens of tokenizer '{}'. Fix: set "
         "model.vocab_size: auto (take it from the tokenizer) or at least {}",
         vocab, tokenizer_vocab_size, tokenizer_path, tokenizer_vocab_size);
  }
}

std::int64_t padded_vocab_size(const ModelConfig& model, int tp) {
  if (model.vocab_size <= 0) fail("padded_vocab_size: model.vocab_size is not resolved yet");
  const std::int64_t multiple = static_cast<std::int64_t>(model.vocab_pad_multiple) * tp;
  return (model.vocab_size + multiple - 1) / multiple * multiple;
}

}  // namespace kiln::config
