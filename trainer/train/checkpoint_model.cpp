#include "trainer/train/checkpoint_model.hpp"

#include <fmt/format.h>

#include <iostream>

#include "trainer/checkpoint/checkpoint_finder.hpp"
#include "trainer/checkpoint/model_state.hpp"
#include "trainer/core/error.hpp"
#include "trainer/train/cuda_device.hpp"

namespace kiln::train {

namespace {

// The recipe in meta.json must describe the weights stored beside it: the model is allocated
// from the recipe, so a recipe claiming far more parameters than the rank files hold is refused
// before it can ask for gigabytes.
void check_recipe_fits_weights(const checkpoint::CheckpointReader& reader, const model::ModelConfig& config) {
  std::uint64_t stored = 0;
  for (const auto& name : reader.tensor_names()) {
    if (name.starts_with(checkpoint::model_tensor_name(""))) stored += checkpoint::element_count(reader.tensor(name).global_shape);
  }
  const auto implied = static_cast<std::uint64_t>(model::parameter_count(config));
  if (implied > stored) {
    fail("checkpoint {}: meta.json's recipe describes a model of {} parameters, but its rank files hold {} model "
         "values (corrupt or edited meta.json?)",
         reader.dir().string(), implied, stored);
  }
}

struct Placement {
  memory::Allocator* allocator;
  std::string description;
};

Placement place_model(std::string_view device) {
  if (device == "cuda" || (device == "auto" && gpu_is_usable("--device auto"))) {
    const auto& gpu = select_cuda_device(fmt::format("--device {}", device));
    return {&cuda_backend::cuda_allocator(), fmt::format("cuda ({})", gpu.device_name())};
  }
  if (device != "cpu" && device != "auto") fail("--device {}: expected cpu, cuda or auto", device);
  return {&memory::host_allocator(), "cpu"};
}

}  // namespace

CheckpointModel load_checkpoint_model(const std::filesystem::path& path, std::string_view device) {
  const auto found = checkpoint::resolve_checkpoint(path, std::cerr);
  const checkpoint::CheckpointReader reader(found.dir);
  CheckpointModel loaded;
  loaded.step_dir = found.dir;
  loaded.step = reader.meta().step;
  loaded.recipe = config::recipe_from_json(reader.meta().recipe, (found.dir / "meta.json").string());
  const auto config = model::from_recipe(loaded.recipe.model, 1);
  check_recipe_fits_weights(reader, config);
  const Placement placement = place_model(device);
  loaded.device = placement.description;
  loaded.model = std::make_unique<model::Transformer>(config, DType::F32, model::ParallelPlacement{}, *placement.allocator);
  checkpoint::read_parameters(reader, loaded.model->parameters());
  const auto tokenizer_path = found.dir / "tokenizer.json";
  std::error_code error;
  if (std::filesystem::exists(std::filesystem::symlink_status(tokenizer_path, error))) loaded.tokenizer.emplace(tok::Tokenizer::load(tokenizer_path));
  return loaded;
}

}  // namespace kiln::train
