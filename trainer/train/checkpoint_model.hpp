#pragma once
// A trained model back from a checkpoint, for `kiln eval` and `kiln generate`: the model
// shape comes from the recipe saved in the checkpoint, the weights from its tensors and the
// tokenizer from the tokenizer.json it carries.
//
// Precision: a checkpoint holds fp32 values whatever train.precision made it (a bf16 run saves
// its fp32 masters), and eval, generate and score always run this fp32 model: the most exact
// weights the run has, one code path, and on the CPU bf16 storage only costs time.
//
// Device: `--device cpu | cuda | auto` of eval, generate and score. The model, its
// activations and the KV cache live on that device; batches and logits cross to it and back
// through the model (Transformer::forward takes host batches) and the callers' read-backs.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

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
  std::string device;                       // where the model runs: "cpu" or "cuda (<GPU name>)"
};

// PATH is a step directory, a run's checkpoints/ directory or a run directory (then the
// latest valid step). `device`: "cpu", "cuda" (an error naming --device when there is no usable
// GPU) or "auto" (the GPU when one is usable, else the CPU). Throws kiln::Error naming the path
// and the problem.
CheckpointModel load_checkpoint_model(const std::filesystem::path& path, std::string_view device = "cpu");

}  // namespace kiln::train
