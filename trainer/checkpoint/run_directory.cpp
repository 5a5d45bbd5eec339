#include "trainer/checkpoint/run_directory.hpp"

#include <unistd.h>

#include <string>
#include <system_error>

#include "trainer/checkpoint/checkpoint_names.hpp"
#include "trainer/core/error.hpp"

namespace kiln::checkpoint {

namespace fs = std::filesystem;

namespace {

std::string kind_of(fs::file_type type) {
  switch (type) {
    case fs::file_type::regular: return "a file";
    case fs::file_type::directory: return "a directory";
    case fs::file_type::symlink: return "a dangling or looping symbolic link";
    case fs::file_type::fifo: return "a FIFO (named pipe)";
    case fs::file_type::character: return "a character device";
    case fs::file_type::block: return "a block device";
    case fs::file_type::socket: return "a socket";
    default: return "not a directory";
  }
}

// What is at `path`, symlinks followed; fs::file_type::not_found when nothing is.
fs::file_type type_at(const fs::path& path, std::string_view role) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (status.type() == fs::file_type::not_found) {
    // A symlink to nowhere, or a loop, is something in the way, not a free name.
    const fs::file_status link = fs::symlink_status(path, error);
    return link.type() == fs::file_type::symlink ? fs::file_type::symlink : fs::file_type::not_found;
  }
  if (error) fail("{} '{}' cannot be examined: {}", role, path.string(), error.message());
  return status.type();
}

void require_writable_directory(const fs::path& dir, std::string_view role) {
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    fail("{} '{}' is not writable: {}. Fix: fix its permissions or choose another run.dir", role, dir.string(),
         std::error_code(errno, std::generic_category()).message());
  }
}

}  // namespace

void prepare_run_directory(const fs::path& run_dir) {
  const auto run_type = type_at(run_dir, "run.dir");
  if (run_type == fs::file_type::not_found) {
    std::error_code error;
    fs::create_directories(run_dir, error);
    if (error) fail("run.dir '{}' cannot be created: {}. Fix: choose another run.dir", run_dir.string(), error.message());
  } else if (run_type != fs::file_type::directory) {
    fail("run.dir '{}' is {}, not a directory. Fix: remove it or choose another run.dir (--run-dir DIR)",
         run_dir.string(), kind_of(run_type));
  }
  require_writable_directory(run_dir, "run.dir");

  const fs::path checkpoints = run_dir / "checkpoints";
  const auto checkpoints_type = type_at(checkpoints, "checkpoints directory");
  if (checkpoints_type == fs::file_type::not_found) return;
  if (checkpoints_type != fs::file_type::directory) {
    fail("checkpoints directory '{}' is {}, not a directory. Fix: remove or rename it", checkpoints.string(),
         kind_of(checkpoints_type));
  }
  require_writable_directory(checkpoints, "checkpoints directory");
  const fs::path latest = checkpoints / kLatestFile;
  const auto latest_type = type_at(latest, "checkpoint pointer");
  if (latest_type != fs::file_type::not_found && latest_type != fs::file_type::regular) {
    fail("checkpoint pointer '{}' is {}; it must be a small file naming the newest step (kiln rewrites it at every "
         "checkpoint). Fix: remove it",
         latest.string(), kind_of(latest_type));
  }
}

}  // namespace kiln::checkpoint
