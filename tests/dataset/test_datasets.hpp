#pragma once
// Helpers for tests that need token datasets on disk: a self-removing temporary directory and
// deterministic pseudo-random documents.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "data/dataset/hdf5_file.hpp"
#include "data/dataset/token_dataset.hpp"
#include "data/loader/epoch_permutation.hpp"

namespace kiln::testing {

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string name = test ? std::string(test->test_suite_name()) + "." + test->name() : "x";
    path_ = std::filesystem::temp_directory_path() /
            ("kiln_test_" + name + "_" + std::to_string(::getpid()) + "_" +
             std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct Corpus {
  std::vector<std::vector<std::uint32_t>> documents;
  std::vector<std::vector<std::uint8_t>> masks;  // empty unless generated with masks
  std::uint64_t vocab_size = 0;

  std::vector<std::uint32_t> stream() const {
    std::vector<std::uint32_t> all;
    for (const auto& document : documents) all.insert(all.end(), document.begin(), document.end());
    return all;
  }
  std::vector<std::uint8_t> mask_stream() const {
    std::vector<std::uint8_t> all;
    for (const auto& mask : masks) all.insert(all.end(), mask.begin(), mask.end());
    return all;
  }
  std::vector<std::uint64_t> offsets() const {
    std::vector<std::uint64_t> result = {0};
    for (const auto& document : documents) result.push_back(result.back() + document.size());
    return result;
  }
};

// Documents of lengths in [min_length, max_length], ids in [0, vocab_size - 1), each ending with
// EOS = vocab_size - 1. Masks (when asked) alternate runs of 0 and 1.
inline Corpus make_corpus(std::size_t documents, std::uint64_t vocab_size, std::uint64_t seed,
                          std::size_t min_length = 1, std::size_t max_length = 64,
                          bool with_masks = false) {
  Corpus corpus;
  corpus.vocab_size = vocab_size;
  std::uint64_t state = seed;
  const auto next = [&state] { return kiln::data::splitmix64_mix(++state); };
  const auto eos = static_cast<std::uint32_t>(vocab_size - 1);
  for (std::size_t d = 0; d < documents; ++d) {
    const std::size_t length = min_length + next() % (max_length - min_length + 1);
    std::vector<std::uint32_t> tokens(length);
    for (auto& token : tokens) token = static_cast<std::uint32_t>(next() % (vocab_size - 1));
    tokens.back() = eos;
    corpus.documents.push_back(std::move(tokens));
    if (with_masks) {
      std::vector<std::uint8_t> mask(length);
      for (std::size_t i = 0; i < length; ++i) mask[i] = static_cast<std::uint8_t>((i / 3 + d) % 2);
      corpus.masks.push_back(std::move(mask));
    }
  }
  return corpus;
}

inline kiln::data::TokenDatasetAttributes test_attributes(std::uint64_t vocab_size,
                                                          const std::string& split = "train") {
  kiln::data::TokenDatasetAttributes attributes;
  attributes.split = split;
  attributes.tokenizer_hash = "00112233445566ff";
  attributes.vocab_size = vocab_size;
  attributes.special_ids = {{"eos", static_cast<std::uint32_t>(vocab_size - 1)}, {"bos", 0}};
  attributes.source_checksum = "aabbccddeeff0011";
  attributes.created_by = "kiln tests";
  return attributes;
}

inline void write_corpus(const std::filesystem::path& path, const Corpus& corpus,
                         const std::string& split = "train") {
  kiln::data::TokenDatasetWriter writer(path, test_attributes(corpus.vocab_size, split),
                                        !corpus.masks.empty());
  for (std::size_t d = 0; d < corpus.documents.size(); ++d) {
    if (corpus.masks.empty()) {
      writer.append_document(corpus.documents[d]);
    } else {
      writer.append_document(corpus.documents[d], corpus.masks[d]);
    }
  }
  writer.finish();
}

// Overwrites elements [first, first + values.size()) of a 1-D dataset in place, for tests that
// damage a finished file the way a bad disk or a hostile edit would (the checksum attributes
// are left as they were).
template <class T>
void overwrite_elements(const std::filesystem::path& path, const char* dataset, std::uint64_t first,
                        const std::vector<T>& values, hid_t memory_type) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const hid_t data = H5Dopen2(file, dataset, H5P_DEFAULT);
  const hid_t space = H5Dget_space(data);
  const hsize_t start = first;
  const hsize_t count = values.size();
  H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nullptr, &count, nullptr);
  const hid_t memory = H5Screate_simple(1, &count, nullptr);
  EXPECT_GE(H5Dwrite(data, memory_type, memory, space, H5P_DEFAULT, values.data()), 0);
  H5Sclose(memory);
  H5Sclose(space);
  H5Dclose(data);
  H5Fclose(file);
}

// Replaces a root string attribute (e.g. a checksum recomputed to match a hostile edit).
inline void overwrite_string_attribute(const std::filesystem::path& path, const char* name,
                                       const std::string& value) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  {
    std::lock_guard lock(kiln::data::hdf5::library_mutex());
    kiln::data::hdf5::write_string_attribute(file, name, value);
  }
  H5Fclose(file);
}

}  // namespace kiln::testing
