#pragma once
// A trained model back from a checkpoint, for `kiln eval` and `kiln generate`: the model
// shape comes from the recipe saved in the checkpoint, the weights from its tensors and the
// tokenizer from the tokenizer.json it carries.
//
// Precision: a checkpoint holds fp32 values whatever train.precision made it (a bf16 run saves
// its fp32 masters), and eval, generate and score always run this fp32 model: the most exact
// weights the run has, one code path, and on the CPU bf16 storage only costs time.
#include <filesystem>
#include <memory>
#include <optional>

#include "data/tokenizer/tokenizer.hpp"
#include "trainer/config/recipe.hpp"
#include "trainer/model/transformer.hpp"

namespace kiln::train {

struct CheckpointModel {
  std::filesystem::path step_dir;
  std::int64_t step = 0;
  config::Recipe recipe;
  std::unique_ptr<model::Transformer> model;
  std::optional<tok::Tokenizer> tokenizer;  // absent when the checkpoint carries none
};

// PATH is a step directory, a run's checkpoints/ directory or a run directory (then the
// latest valid step). Throws kiln::Error naming the path and the problem.
CheckpointModel load_checkpoint_model(const std::filesystem::path& path);

}  // namespace kiln::train
