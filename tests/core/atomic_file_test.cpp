#include "trainer/core/atomic_file.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "trainer/core/error.hpp"

namespace {

namespace fs = std::filesystem;

fs::path fresh_directory(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("kiln_atomic_file_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(AtomicFile, CommitPublishesAndLeavesNoTemporary) {
  const auto dir = fresh_directory("commit");
  const auto target = dir / "out.json";
  {
    kiln::AtomicFile file(target);
    file.write("{\"a\": ");
    file.write("1}");
    EXPECT_FALSE(fs::exists(target)) << "nothing is visible before commit";
    file.commit();
  }
  EXPECT_EQ(read_all(target), "{\"a\": 1}");
  EXPECT_FALSE(fs::exists(kiln::temporary_path_for(target)));
  fs::remove_all(dir);
}

TEST(AtomicFile, UncommittedWriteKeepsTheOldFileAndRemovesTheTemporary) {
  const auto dir = fresh_directory("abandon");
  const auto target = dir / "tokenizer.json";
  kiln::write_file_atomically(target, "old");
  {
    kiln::AtomicFile file(target);
    file.write("new, but the writer failed before commit");
  }
  EXPECT_EQ(read_all(target), "old");
  EXPECT_FALSE(fs::exists(kiln::temporary_path_for(target)));
  fs::remove_all(dir);
}

TEST(AtomicFile, WriteErrorThrowsAndNothingIsRenamed) {
  // A file-size limit makes write(2) fail with EFBIG, as a full disk fails with ENOSPC.
  const auto dir = fresh_directory("full");
  const auto target = dir / "data.bin";
  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  bool threw = false;
  try {
    kiln::AtomicFile file(target);
    const std::string block(8192, 'x');
    file.write(block);
    file.commit();
  } catch (const kiln::Error& error) {
    threw = true;
    EXPECT_NE(std::string(error.what()).find("data.bin.tmp"), std::string::npos) << error.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  EXPECT_FALSE(fs::exists(target));
  EXPECT_FALSE(fs::exists(kiln::temporary_path_for(target)));
  fs::remove_all(dir);
}

TEST(AtomicFile, UncreatableTemporaryNamesThePath) {
  const auto target = fs::path("/nonexistent-kiln-dir/out.json");
  try {
    kiln::AtomicFile file(target);
    FAIL() << "expected an error";
  } catch (const kiln::Error& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent-kiln-dir/out.json.tmp"), std::string::npos);
  }
}

TEST(AtomicFile, PublishFileRenamesALibraryWrittenTemporary) {
  const auto dir = fresh_directory("publish");
  const auto target = dir / "train.h5";
  const auto temporary = kiln::temporary_path_for(target);
  std::ofstream(temporary, std::ios::binary) << "bytes";
  kiln::publish_file(temporary, target);
  EXPECT_EQ(read_all(target), "bytes");
  EXPECT_FALSE(fs::exists(temporary));
  fs::remove_all(dir);
}

}  // namespace
