#include "data/io/line_writer.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "trainer/core/atomic_file.hpp"
#include "trainer/core/error.hpp"

namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class LineWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_line_writer_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(LineWriterTest, ClosePublishesEveryLineAndNoTemporary) {
  const auto path = dir_ / "out.jsonl";
  kiln::data::LineWriter writer(path);
  for (int i = 0; i < 3000; ++i) writer.write_line("{\"i\": " + std::to_string(i) + "}");
  EXPECT_FALSE(fs::exists(path)) << "visible before close";
  writer.close();
  const std::string text = read_all(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3000);
  EXPECT_TRUE(text.ends_with("{\"i\": 2999}\n"));
  EXPECT_FALSE(fs::exists(kiln::temporary_path_for(path)));
}

TEST_F(LineWriterTest, AFailedWriteKeepsTheOldFileAndLeavesNoTemporary) {
  const auto path = dir_ / "out.jsonl";
  kiln::write_file_atomically(path, "old\n");
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old_limit;
  small.rlim_cur = 64 * 1024;  // writes past it fail with EFBIG, as on a full disk
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string error;
  try {
    kiln::data::LineWriter writer(path);
    for (int i = 0; i < 20000; ++i) writer.write_line("{\"text\": \"line number " + std::to_string(i) + "\"}");
    writer.close();
  } catch (const kiln::Error& thrown) {
    error = thrown.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(error.find("out.jsonl.tmp"), std::string::npos) << error;
  EXPECT_EQ(read_all(path), "old\n");
  EXPECT_FALSE(fs::exists(kiln::temporary_path_for(path)));
}

}  // namespace
