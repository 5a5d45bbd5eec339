#pragma once
// Finding a checkpoint that is safe to load (DESIGN.md §9: "a torn or corrupt checkpoint is
// detected and the previous one is used, with a message").
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>

namespace kiln::checkpoint {

struct FoundCheckpoint {
  std::filesystem::path dir;  // the step directory
  std::int64_t step = 0;
};

// Why a step directory must not be loaded, or nullopt when it is whole: named like a committed
// step, `complete` present and matching meta.json, meta.json parses with the same step, and
// every file listed in its checksums exists and matches (every rank file must be listed).
std::optional<std::string> find_checkpoint_problem(const std::filesystem::path& step_dir);

// The newest loadable checkpoint in a checkpoints/ directory: the step `latest` names, then
// older steps newest first (a step newer than `latest` is an unfinished publish or an abandoned
// run, and is not used). Each torn (.tmp) or corrupt step passed over is reported on messages,
// naming it and why. nullopt when there is none (a missing directory included).
std::optional<FoundCheckpoint> find_latest_valid(const std::filesystem::path& checkpoints_dir,
                                                 std::ostream& messages);
std::optional<FoundCheckpoint> find_latest_valid(const std::filesystem::path& checkpoints_dir);

// What a user may pass as "a checkpoint": a step directory (used as is, if valid), a
// checkpoints/ directory (its latest valid step) or a run directory holding checkpoints/.
// Throws kiln::Error saying what was found and what to pass instead.
FoundCheckpoint resolve_checkpoint(const std::filesystem::path& path, std::ostream& messages);
FoundCheckpoint resolve_checkpoint(const std::filesystem::path& path);

}  // namespace kiln::checkpoint
