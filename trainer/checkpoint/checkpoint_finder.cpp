#include "trainer/checkpoint/checkpoint_finder.hpp"

#include <algorithm>
#include <cctype>
#include <iostream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "trainer/checkpoint/checkpoint_meta.hpp"
#include "trainer/checkpoint/checkpoint_names.hpp"
#include "trainer/core/checksum.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"

namespace kiln::checkpoint {

namespace fs = std::filesystem;

namespace {

// "a/step_00000100/" -> "a/step_00000100", so filename() names the directory.
fs::path without_trailing_separator(const fs::path& path) {
  return path.has_filename() ? path : path.parent_path();
}

// `complete` and `latest` hold one line each.
constexpr std::uint64_t kMaxMarkerBytes = 4096;

// The file's text, or nullopt when nothing is there. Anything else that is not a small regular
// file (a directory, a FIFO, a symlink loop, a huge file) is a kiln::Error naming it.
std::optional<std::string> read_small_file(const fs::path& path, std::string_view role, std::uint64_t max_bytes) {
  std::error_code error;
  if (!fs::exists(fs::symlink_status(path, error))) return std::nullopt;
  return read_text_file(path, role, max_bytes);
}

std::string trimmed(std::string text) {
  const auto is_space = [](unsigned char c) { return std::isspace(c) != 0; };
  text.erase(std::find_if_not(text.rbegin(), text.rend(), is_space).base(), text.end());
  text.erase(text.begin(), std::find_if_not(text.begin(), text.end(), is_space));
  return text;
}

// Checks `complete` against meta.json's bytes; returns meta.json's text when they agree.
std::optional<std::string> check_marker(const fs::path& dir, std::string& problem) {
  const auto marker = read_small_file(dir / kCompleteFile, "checkpoint marker", kMaxMarkerBytes);
  if (!marker) {
    problem = "no 'complete' marker (the write did not finish)";
    return std::nullopt;
  }
  const auto meta_text = read_small_file(dir / kMetaFile, "checkpoint metadata", kMaxMetaBytes);
  if (!meta_text) {
    problem = "meta.json is missing";
    return std::nullopt;
  }
  const std::string expected = std::string(kMetaFile) + " " + to_hex(xxh3_64(*meta_text));
  if (trimmed(*marker) != expected) {
    problem = "meta.json does not match the checksum recorded in 'complete' (corrupted)";
    return std::nullopt;
  }
  return meta_text;
}

std::optional<std::string> check_files(const fs::path& dir, const CheckpointMeta& meta) {
  bool has_rank_file = false;
  for (const auto& [name, expected] : meta.checksums) {
    if (name.find('/') != std::string::npos || name == "..") return "meta.json lists a bad file name";
    const fs::path file = dir / name;
    if (!fs::is_regular_file(file)) return fmt::format("{} is missing", name);
    const std::string actual = to_hex(xxh3_64_file(file));
    if (actual != expected) {
      return fmt::format("{} is corrupt (XXH3 {}, meta.json records {})", name, actual, expected);
    }
    has_rank_file = has_rank_file || is_rank_file_name(name);
  }
  if (!has_rank_file) return "meta.json lists no rank file";
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (is_rank_file_name(name) && !meta.checksums.contains(name)) {
      return fmt::format("{} is not listed in meta.json checksums", name);
    }
  }
  return std::nullopt;
}

std::optional<std::string> check_step_dir(const fs::path& given) {
  const fs::path dir = without_trailing_separator(given);
  const std::string name = dir.filename().string();
  if (parse_temporary_step_dir_name(name)) return "torn: a write that never finished (.tmp)";
  const auto step = parse_step_dir_name(name);
  if (!step) return fmt::format("'{}' is not a step directory name (step_XXXXXXXX)", name);
  if (!fs::is_directory(dir)) return "does not exist";
  std::string problem;
  const auto meta_text = check_marker(dir, problem);
  if (!meta_text) return problem;
  const auto json = nlohmann::json::parse(*meta_text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return "meta.json is not valid JSON";
  const CheckpointMeta meta = meta_from_json(json, dir / kMetaFile);
  if (meta.step != *step) {
    return fmt::format("meta.json says step {}, the directory name says {}", meta.step, *step);
  }
  return check_files(dir, meta);
}

std::optional<std::int64_t> read_latest_pointer(const fs::path& checkpoints_dir,
                                                std::ostream& messages) {
  std::optional<std::string> text;
  try {
    text = read_small_file(checkpoints_dir / kLatestFile, "checkpoint pointer", kMaxMarkerBytes);
  } catch (const Error& error) {  // the steps themselves are still there to choose from
    messages << fmt::format("kiln: ignoring {}\n", error.what());
    return std::nullopt;
  }
  if (!text) return std::nullopt;
  const auto step = parse_step_dir_name(trimmed(*text));
  if (!step) {
    messages << fmt::format("kiln: ignoring {}: it does not name a step directory\n",
                            (checkpoints_dir / kLatestFile).string());
  }
  return step;
}

void report_torn(const fs::path& checkpoints_dir, std::ostream& messages) {
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    if (parse_temporary_step_dir_name(entry.path().filename().string())) {
      messages << fmt::format("kiln: skipping checkpoint {}: torn: a write that never finished\n",
                              entry.path().string());
    }
  }
}

// Candidate steps, in the order they should be tried.
std::vector<std::int64_t> candidate_steps(const fs::path& checkpoints_dir, std::ostream& messages) {
  std::vector<std::int64_t> steps;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
    if (const auto step = parse_step_dir_name(entry.path().filename().string())) steps.push_back(*step);
  }
  std::sort(steps.rbegin(), steps.rend());
  const auto latest = read_latest_pointer(checkpoints_dir, messages);
  if (!latest) return steps;
  std::erase_if(steps, [&](std::int64_t step) { return step >= *latest; });
  steps.insert(steps.begin(), *latest);
  return steps;
}

// The newest loadable step (see find_latest_valid); std::filesystem errors escape to it.
std::optional<FoundCheckpoint> find_newest_loadable(const fs::path& checkpoints_dir, std::ostream& messages) {
  report_torn(checkpoints_dir, messages);
  for (const std::int64_t step : candidate_steps(checkpoints_dir, messages)) {
    const fs::path dir = checkpoints_dir / step_dir_name(step);
    const auto problem = find_checkpoint_problem(dir);
    if (!problem) return FoundCheckpoint{dir, step};
    messages << fmt::format("kiln: skipping checkpoint {}: {}\n", dir.string(), *problem);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> find_checkpoint_problem(const fs::path& step_dir) {
  try {
    return check_step_dir(step_dir);
  } catch (const std::exception& error) {  // unreadable file, malformed metadata
    return std::string(error.what());
  }
}

std::optional<FoundCheckpoint> find_latest_valid(const fs::path& checkpoints_dir,
                                                 std::ostream& messages) {
  std::error_code error;
  if (!fs::is_directory(checkpoints_dir, error)) return std::nullopt;
  try {
    return find_newest_loadable(checkpoints_dir, messages);
  } catch (const fs::filesystem_error& listing) {  // an unreadable directory
    fail("checkpoints directory '{}' cannot be listed: {}", checkpoints_dir.string(), listing.code().message());
  }
}

std::optional<FoundCheckpoint> find_latest_valid(const fs::path& checkpoints_dir) {
  return find_latest_valid(checkpoints_dir, std::cerr);
}

FoundCheckpoint resolve_checkpoint(const fs::path& given, std::ostream& messages) {
  const fs::path path = without_trailing_separator(given);
  std::error_code error;
  if (!fs::exists(fs::symlink_status(path, error))) fail("checkpoint '{}' does not exist", path.string());
  if (!fs::is_directory(path, error)) {
    fail("checkpoint '{}' is {}. Fix: pass a step directory (checkpoints/step_XXXXXXXX) or a "
         "checkpoints/ directory",
         path.string(), fs::exists(path, error) ? "a file" : "a dangling or looping symbolic link");
  }
  const std::string name = path.filename().string();
  const bool is_step_dir = parse_step_dir_name(name) || parse_temporary_step_dir_name(name) ||
                           fs::exists(path / kMetaFile, error) || fs::exists(path / kCompleteFile, error);
  if (is_step_dir) {
    if (const auto problem = find_checkpoint_problem(path)) {
      fail("checkpoint {} cannot be used: {}. Fix: pass its checkpoints/ directory to use the "
           "newest valid checkpoint",
           path.string(), *problem);
    }
    return FoundCheckpoint{path, *parse_step_dir_name(name)};
  }
  const fs::path checkpoints_dir =
      fs::is_directory(path / "checkpoints", error) ? path / "checkpoints" : path;
  if (auto found = find_latest_valid(checkpoints_dir, messages)) return *found;
  fail("no valid checkpoint in {} (expected step_XXXXXXXX directories with a 'complete' marker)",
       checkpoints_dir.string());
}

FoundCheckpoint resolve_checkpoint(const fs::path& path) { return resolve_checkpoint(path, std::cerr); }

}  // namespace kiln::checkpoint
