#pragma once
// The run directory a training run writes to (run.dir: recipe.yaml, tokenizer.json,
// metrics.jsonl, checkpoints/ with its `latest` pointer), checked before the first step: a
// run.dir that is a file, a checkpoints/ that is not a directory or a `latest` that is not a
// regular file would otherwise fail only when the first checkpoint is saved, after the steps
// it should have kept were computed.
#include <filesystem>

namespace kiln::checkpoint {

// Creates run_dir (and its parents) when missing; throws kiln::Error naming the path that is
// in the way and what it is.
void prepare_run_directory(const std::filesystem::path& run_dir);

}  // namespace kiln::checkpoint
