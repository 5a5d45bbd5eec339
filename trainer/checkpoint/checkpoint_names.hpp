#pragma once
// Names inside a run's checkpoints/ directory (DESIGN.md §9):
//   checkpoints/
//     latest                     text: the name of the newest committed step directory
//     step_00000100/             one committed checkpoint
//       rank_00000.h5            what rank 0 owns (model, optimizer pieces)
//       meta.json                step, tokens, recipe, layout, loader/RNG/schedule state, checksums
//       complete                 written last: "meta.json <xxh3>", proof the commit finished
//     step_00000200.tmp/         a checkpoint being written (or torn by a crash): never read
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::checkpoint {

inline constexpr std::string_view kLatestFile = "latest";
inline constexpr std::string_view kMetaFile = "meta.json";
inline constexpr std::string_view kCompleteFile = "complete";
inline constexpr std::string_view kTemporarySuffix = ".tmp";
inline constexpr std::string_view kCheckpointFormat = "kiln.checkpoint";
inline constexpr int kCheckpointFormatVersion = 1;

// "step_00000100": at least 8 digits, so names sort like steps for any realistic run.
std::string step_dir_name(std::int64_t step);
// The step of "step_00000100"; nullopt for anything else (including "step_00000100.tmp").
std::optional<std::int64_t> parse_step_dir_name(std::string_view name);
// The step of "step_00000100.tmp"; nullopt for anything else.
std::optional<std::int64_t> parse_temporary_step_dir_name(std::string_view name);

// "rank_00003.h5"
std::string rank_file_name(int rank);
bool is_rank_file_name(std::string_view name);

}  // namespace kiln::checkpoint
