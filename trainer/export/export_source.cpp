#include "trainer/export/export_source.hpp"

#include <fmt/format.h>

#include <iostream>

#include "data/chat/chat_template.hpp"
#include "data/dataset/token_dataset.hpp"
#include "trainer/checkpoint/checkpoint_finder.hpp"
#include "trainer/checkpoint/model_state.hpp"
#include "trainer/core/error.hpp"
#include "trainer/model/parameters.hpp"

namespace kiln::interop {

namespace fs = std::filesystem;

ExportDtype parse_export_dtype(std::string_view text) {
  for (const auto dtype : {ExportDtype::f32, ExportDtype::f16, ExportDtype::bf16, ExportDtype::q8_0}) {
    if (export_dtype_name(dtype) == text) return dtype;
  }
  fail("--dtype {} is not one of f32, f16, bf16, q8_0", text);
}

std::string_view export_dtype_name(ExportDtype dtype) {
  switch (dtype) {
    case ExportDtype::f32: return "f32";
    case ExportDtype::f16: return "f16";
    case ExportDtype::bf16: return "bf16";
    case ExportDtype::q8_0: return "q8_0";
  }
  return "?";
}

namespace {

// The template the training data was rendered with: data.train's chat_template attribute,
// when the dataset is still where the recipe says.
std::string recorded_chat_template(const config::Recipe& recipe) {
  std::error_code missing;
  if (recipe.data.train.empty() || !fs::is_regular_file(recipe.data.train, missing)) return "";
  try {
    return data::TokenDataset::open(recipe.data.train).attributes().chat_template;
  } catch (const Error& error) {
    std::cerr << "kiln: warning: cannot read the chat template of " << recipe.data.train << ": " << error.what() << "\n";
    return "";
  }
}

}  // namespace

ExportSource::ExportSource(const fs::path& path, std::string chat_template) {
  const auto found = checkpoint::resolve_checkpoint(path, std::cerr);
  step_dir_ = found.dir;
  reader_ = std::make_unique<checkpoint::CheckpointReader>(found.dir);
  recipe_ = config::recipe_from_json(reader_->meta().recipe, (found.dir / "meta.json").string());
  model_ = model::from_recipe(recipe_.model, 1);
  tokenizer_path_ = found.dir / "tokenizer.json";
  if (fs::exists(tokenizer_path_)) tokenizer_.emplace(tok::Tokenizer::load(tokenizer_path_));
  chat_template_ = chat_template.empty() ? recorded_chat_template(recipe_) : std::move(chat_template);
  if (!chat_template_.empty()) chat::find_chat_template(chat_template_);  // a known name
  // The registry allocates the model's buffers; it lives only long enough to list the shapes.
  const model::ParameterStore store(model_, DType::F32);
  for (const auto& info : store.infos()) {
    const auto shape = info.export_shape();
    shapes_.emplace(info.name, std::vector<std::int64_t>(shape.begin(), shape.end()));
  }
}

const tok::Tokenizer& ExportSource::tokenizer() const {
  if (!tokenizer_) fail("checkpoint {} carries no tokenizer.json; an exported model needs one", step_dir_.string());
  return *tokenizer_;
}

std::vector<std::int64_t> ExportSource::shape_of(std::string_view parameter) const {
  const auto found = shapes_.find(parameter);
  if (found == shapes_.end()) fail("the {} model has no parameter {}", model::family_name(model_.family), parameter);
  return found->second;
}

std::vector<float> ExportSource::read(std::string_view parameter) const {
  const std::string name = checkpoint::model_tensor_name(parameter);
  if (!reader_->has(name)) fail("checkpoint {} has no tensor {}", step_dir_.string(), name);
  const auto& stored = reader_->tensor(name).global_shape;
  const auto expected = shape_of(parameter);
  const checkpoint::Shape expected_shape(expected.begin(), expected.end());
  if (stored != expected_shape) {
    fail("checkpoint {}: tensor {} has shape {} but its recipe's model implies {} (model.{} ...); the checkpoint "
         "does not match its config",
         step_dir_.string(), name, checkpoint::shape_text(stored), checkpoint::shape_text(expected_shape),
         "d_model/n_heads/vocab_size");
  }
  return reader_->read(name);
}

}  // namespace kiln::interop
