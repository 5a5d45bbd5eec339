#include "trainer/core/checksum.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace {

TEST(Checksum, KnownXxh3Values) {
  // Reference values from the xxHash specification's test vectors (XXH3_64bits, seed 0).
  EXPECT_EQ(kiln::xxh3_64(std::string_view{}), 0x2D06800538D394C2ULL);
  EXPECT_EQ(kiln::to_hex(0x2D06800538D394C2ULL), "2d06800538d394c2");
}

TEST(Checksum, StreamEqualsOneShot) {
  const std::string text = "the quick brown fox jumps over the lazy dog, many times over";
  kiln::Xxh3Stream stream;
  stream.update(text.data(), 10);
  stream.update(text.data() + 10, text.size() - 10);
  EXPECT_EQ(stream.digest(), kiln::xxh3_64(text));
}

TEST(Checksum, FileEqualsBytesAndMissingFileNamesPath) {
  const auto path = std::filesystem::temp_directory_path() / "kiln_checksum_test.bin";
  const std::string text(3 << 20, 'x');
  std::ofstream(path, std::ios::binary) << text;
  EXPECT_EQ(kiln::xxh3_64_file(path), kiln::xxh3_64(text));
  std::filesystem::remove(path);
  try {
    kiln::xxh3_64_file(path);
    FAIL() << "expected an error";
  } catch (const std::exception& error) {
    EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos);
  }
}

}  // namespace
