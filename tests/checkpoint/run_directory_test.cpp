// The run directory is checked before the first step (trainer/checkpoint/run_directory), and
// the checkpoint finder refuses pointers and markers that are not small regular files by name
// instead of reading them (a FIFO would block, a directory would read as garbage).
#include "trainer/checkpoint/run_directory.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "tests/dataset/test_datasets.hpp"
#include "trainer/checkpoint/checkpoint_finder.hpp"
#include "trainer/core/error.hpp"

namespace {

namespace fs = std::filesystem;
using kiln::testing::TempDir;

std::string error_of(const fs::path& run_dir) {
  try {
    kiln::checkpoint::prepare_run_directory(run_dir);
  } catch (const kiln::Error& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(RunDirectory, CreatedWhenMissing) {
  TempDir dir;
  kiln::checkpoint::prepare_run_directory(dir / "a" / "b");
  EXPECT_TRUE(fs::is_directory(dir / "a" / "b"));
  kiln::checkpoint::prepare_run_directory(dir / "a" / "b");  // and fine when it exists
}

TEST(RunDirectory, RunDirThatIsAFileOrALoop) {
  TempDir dir;
  std::ofstream(dir / "file") << "x";
  EXPECT_NE(error_of(dir / "file").find("run.dir '" + (dir / "file").string() + "' is a file, not a directory"),
            std::string::npos)
      << error_of(dir / "file");
  fs::create_symlink(dir / "loop", dir / "loop");
  EXPECT_NE(error_of(dir / "loop").find("symbolic link"), std::string::npos) << error_of(dir / "loop");
  EXPECT_NE(error_of(dir / "file" / "below").find("cannot be created"), std::string::npos);
}

TEST(RunDirectory, CheckpointsAndLatestMustBeUsable) {
  TempDir dir;
  std::ofstream(dir / "checkpoints") << "x";
  EXPECT_NE(error_of(dir.path()).find("checkpoints directory '" + (dir / "checkpoints").string() + "' is a file"),
            std::string::npos)
      << error_of(dir.path());
  fs::remove(dir / "checkpoints");
  fs::create_directories(dir / "checkpoints" / "latest");
  EXPECT_NE(error_of(dir.path()).find("checkpoint pointer '" + (dir / "checkpoints" / "latest").string() +
                                      "' is a directory"),
            std::string::npos)
      << error_of(dir.path());
  fs::remove(dir / "checkpoints" / "latest");
  std::ofstream(dir / "checkpoints" / "latest") << "step_00000004\n";
  EXPECT_EQ(error_of(dir.path()), "(no error)");
}

TEST(CheckpointFinder, LatestThatIsNotAFileIsIgnoredWithAMessage) {
  TempDir dir;
  ASSERT_EQ(::mkfifo((dir / "latest").c_str(), 0600), 0);  // reading it would block forever
  std::ostringstream messages;
  EXPECT_FALSE(kiln::checkpoint::find_latest_valid(dir.path(), messages));
  EXPECT_NE(messages.str().find("checkpoint pointer '" + (dir / "latest").string() + "' is a FIFO"), std::string::npos)
      << messages.str();
}

TEST(CheckpointFinder, MetadataThatIsNotAFileIsAProblemNotAHang) {
  TempDir dir;
  const fs::path step = dir / "step_00000001";
  fs::create_directories(step);
  std::ofstream(step / "complete") << "meta.json 0000000000000000\n";
  ASSERT_EQ(::mkfifo((step / "meta.json").c_str(), 0600), 0);
  const auto problem = kiln::checkpoint::find_checkpoint_problem(step);
  ASSERT_TRUE(problem);
  EXPECT_NE(problem->find("is a FIFO"), std::string::npos) << *problem;
}

}  // namespace
