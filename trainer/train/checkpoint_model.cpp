#include "trainer/train/checkpoint_model.hpp"

#include <iostream>

#include "trainer/checkpoint/checkpoint_finder.hpp"
#include "trainer/checkpoint/model_state.hpp"

namespace kiln::train {

CheckpointModel load_checkpoint_model(const std::filesystem::path& path) {
  const auto found = checkpoint::resolve_checkpoint(path, std::cerr);
  const checkpoint::CheckpointReader reader(found.dir);
  CheckpointModel loaded;
  loaded.step_dir = found.dir;
  loaded.step = reader.meta().step;
  loaded.recipe = config::recipe_from_json(reader.meta().recipe, (found.dir / "meta.json").string());
  loaded.model = std::make_unique<model::Transformer>(model::from_recipe(loaded.recipe.model, 1));
  checkpoint::read_parameters(reader, loaded.model->parameters());
  const auto tokenizer_path = found.dir / "tokenizer.json";
  if (std::filesystem::exists(tokenizer_path)) loaded.tokenizer.emplace(tok::Tokenizer::load(tokenizer_path));
  return loaded;
}

}  // namespace kiln::train
