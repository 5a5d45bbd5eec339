#pragma once
// `kiln train`: the training loop on one process (DESIGN.md §4–§10).
//
// One optimizer step: the loader's global batch is cut into micro-batches; each runs forward
// and backward, gradients accumulating with scale 1 / (targets counted in the whole batch),
// so the step's gradient is that of the batch's mean loss whatever the micro-batch size.
// Then the global gradient norm, clipping folded into the AdamW step, the learning rate of
// the schedule. A step whose gradients are not finite is skipped and reported.
//
// The run directory holds recipe.yaml (the resolved recipe), tokenizer.json, metrics.jsonl
// and checkpoints/. A run whose directory already has a valid checkpoint continues from it:
// weights, AdamW moments, step, loader position and schedule come back exactly, so the losses
// continue bitwise as if the run had never stopped (on the same machine and thread count).
#include <filesystem>
#include <memory>

#include "trainer/config/recipe.hpp"

namespace kiln::train {

struct TrainOutcome {
  std::int64_t steps_done = 0;  // optimizer steps completed in total (resumed ones included)
  bool stopped_by_signal = false;
  double last_loss = 0.0;
  std::filesystem::path last_checkpoint;
};

class Trainer {
 public:
  // Loads tokenizer, datasets and model; resumes from the run directory's latest valid
  // checkpoint (when recipe.run.resume). Throws kiln::Error on any inconsistency.
  explicit Trainer(config::Recipe recipe);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  TrainOutcome run();

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace kiln::train
