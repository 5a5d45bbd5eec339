#include "trainer/core/input_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "trainer/core/error.hpp"

namespace {

namespace fs = std::filesystem;

std::string error_of(const fs::path& path, std::uint64_t max_bytes = kiln::kMaxWholeFileBytes) {
  try {
    kiln::read_text_file(path, "tokenizer", max_bytes);
  } catch (const kiln::Error& error) {
    return error.what();
  }
  return "";
}

class InputFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_input_file_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(InputFile, ReadsARegularFileWhole) {
  std::ofstream(dir_ / "a.json", std::ios::binary) << "{\"x\": 1}\n";
  EXPECT_EQ(kiln::read_text_file(dir_ / "a.json", "config"), "{\"x\": 1}\n");
}

TEST_F(InputFile, RefusesWhatIsNotARegularFile) {
  EXPECT_NE(error_of(dir_ / "missing.json").find("does not exist"), std::string::npos);
  EXPECT_NE(error_of(dir_).find("is a directory"), std::string::npos);
  EXPECT_NE(error_of("/dev/zero").find("character device"), std::string::npos);
  ASSERT_EQ(::mkfifo((dir_ / "pipe").c_str(), 0600), 0);
  EXPECT_NE(error_of(dir_ / "pipe").find("FIFO"), std::string::npos);  // and does not block on open
  fs::create_symlink(dir_ / "loop_b", dir_ / "loop_a");
  fs::create_symlink(dir_ / "loop_a", dir_ / "loop_b");
  EXPECT_NE(error_of(dir_ / "loop_a").find("symbolic link loop"), std::string::npos);
  const auto message = error_of(dir_);
  EXPECT_NE(message.find("tokenizer '"), std::string::npos) << "the role is named: " << message;
}

TEST_F(InputFile, RefusesAFileOverTheLimit) {
  std::ofstream(dir_ / "big.json", std::ios::binary) << std::string(100, 'x');
  EXPECT_NE(error_of(dir_ / "big.json", 99).find("100 bytes"), std::string::npos);
  EXPECT_EQ(error_of(dir_ / "big.json", 100), "");
}

}  // namespace
