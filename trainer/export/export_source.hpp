#pragma once
// The checkpoint an export reads (`kiln export --checkpoint PATH`): its recipe's model, its
// tokenizer, the chat template its training data was rendered with, and its tensors by
// canonical name. Tensors come through the checkpoint reader's region gather, so a
// checkpoint written under any (dp, tp, pp) layout exports the same files; each is read
// whole, one at a time, and checked against the shape the recipe's model implies.
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer/tokenizer.hpp"
#include "trainer/checkpoint/checkpoint_reader.hpp"
#include "trainer/config/recipe.hpp"
#include "trainer/model/model_config.hpp"

namespace kiln::interop {

// Element type of exported weights.
enum class ExportDtype { f32, f16, bf16, q8_0 };
ExportDtype parse_export_dtype(std::string_view text);  // kiln::Error listing the choices
std::string_view export_dtype_name(ExportDtype dtype);

class ExportSource {
 public:
  // PATH: a step directory, a checkpoints/ directory or a run directory. chat_template
  // overrides the template recorded in the training data ("" = use that one, if any).
  ExportSource(const std::filesystem::path& path, std::string chat_template = "");

  const std::filesystem::path& step_dir() const { return step_dir_; }
  const config::Recipe& recipe() const { return recipe_; }
  const model::ModelConfig& model() const { return model_; }  // unpadded shapes: tp = 1
  // The checkpoint's tokenizer; kiln::Error when it carries none.
  const tok::Tokenizer& tokenizer() const;
  const std::filesystem::path& tokenizer_path() const { return tokenizer_path_; }
  const std::string& chat_template() const { return chat_template_; }  // "" = none

  // The export shape of a kiln parameter ([V, C] without padding, ...).
  std::vector<std::int64_t> shape_of(std::string_view parameter) const;
  // The whole tensor, row-major; kiln::Error naming the checkpoint and the tensor when it is
  // missing or its shape disagrees with the recipe's model.
  std::vector<float> read(std::string_view parameter) const;

 private:
  std::filesystem::path step_dir_;
  std::unique_ptr<checkpoint::CheckpointReader> reader_;
  config::Recipe recipe_;
  model::ModelConfig model_;
  std::filesystem::path tokenizer_path_;
  std::optional<tok::Tokenizer> tokenizer_;
  std::string chat_template_;
  std::map<std::string, std::vector<std::int64_t>, std::less<>> shapes_;  // export shapes by parameter
};

}  // namespace kiln::interop
