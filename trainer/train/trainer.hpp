#pragma once
// `kiln train`: the training loop, on one process or on a dp x tp x pp grid of MPI ranks
// (DESIGN.md §4–§10).
//
// One optimizer step: the loader's global batch, sliced by dp rank, is cut into micro-batches;
// they run forward and backward (through the 1F1B pipeline schedule when pp > 1, with the
// model's tensor-parallel collectives inside), gradients accumulating with scale
// 1 / (targets counted in the whole global batch), so the step's gradient is that of the
// global batch's mean loss whatever the layout. Then: tied-embedding gradients summed between
// the first and last stage, gradients summed over dp (or reduce-scattered under ZeRO-1), the
// global gradient norm with every parameter counted once, clipping folded into the AdamW
// step, parameters all-gathered under ZeRO-1. A step whose gradients are not finite on any
// rank is skipped on every rank and reported.
//
// Evaluation (data.val, every eval.every_steps and after the last step) runs eval.batches
// validation batches, never more than the validation set holds.
//
// Stop signals (trainer/core/stop_signal.hpp): SIGINT or SIGTERM, during a step or during an
// evaluation, ends the run after the step or evaluation batch in flight, with a checkpoint of
// the last finished step and exit status 0. A second signal exits at once (the newest
// checkpoint on disk is complete), except while a checkpoint is being written or once every
// step is done: then the checkpoint is finished first.
//
// The run directory holds recipe.yaml, tokenizer.json, metrics.jsonl and checkpoints/; it is
// checked (and created) before the first step. A run
// whose directory already has a valid checkpoint continues from it, under any layout:
// weights, AdamW moments, step, loader position and schedule come back exactly, so on one
// machine with the same layout and thread count the losses continue bit for bit.
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
  // Builds the process grid from the job's ranks, loads tokenizer, datasets and this rank's
  // part of the model; resumes from the run directory's latest valid checkpoint (when
  // recipe.run.resume). Throws kiln::Error on any inconsistency. Every rank constructs it.
  explicit Trainer(config::Recipe recipe);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  TrainOutcome run();

  // After run(), every rank writes "<path>.rank<R>.json": the bytes it sent per step in each
  // group (tp, dp, pp, embedding, world) and per operation, for scripts/bench_parallel.
  void write_traffic_report(const std::filesystem::path& path) const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace kiln::train
