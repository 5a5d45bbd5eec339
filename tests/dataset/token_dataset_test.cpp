#include "data/dataset/token_dataset.hpp"

#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "tests/dataset/test_datasets.hpp"
#include "trainer/core/error.hpp"

namespace {

namespace fs = std::filesystem;
using kiln::data::TokenDataset;
using kiln::data::TokenDatasetWriter;
using kiln::testing::Corpus;
using kiln::testing::make_corpus;
using kiln::testing::TempDir;
using kiln::testing::write_corpus;

// Runs `action`, expects a kiln::Error whose message contains every fragment.
template <class Action>
void expect_error(Action&& action, const std::vector<std::string>& fragments) {
  try {
    action();
    ADD_FAILURE() << "expected a kiln::Error";
  } catch (const kiln::Error& error) {
    const std::string message = error.what();
    for (const auto& fragment : fragments) {
      EXPECT_NE(message.find(fragment), std::string::npos)
          << "message '" << message << "' lacks '" << fragment << "'";
    }
  }
}

std::vector<std::uint32_t> read_all_tokens(const TokenDataset& dataset) {
  std::vector<std::uint32_t> tokens(dataset.num_tokens());
  dataset.read_tokens(0, tokens);
  return tokens;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Opens an existing file read-write with the raw C API, for tests that damage its structure.
struct RawFile {
  explicit RawFile(const fs::path& path) : id(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)) {
    EXPECT_GE(id, 0);
  }
  ~RawFile() { H5Fclose(id); }
  hid_t id;
};

TEST(TokenDataset, RoundTripUint16) {
  TempDir dir;
  const Corpus corpus = make_corpus(300, 50257, 1);
  write_corpus(dir / "train.h5", corpus);

  const auto dataset = TokenDataset::open(dir / "train.h5");
  EXPECT_EQ(dataset.token_bits(), 16);
  EXPECT_FALSE(dataset.has_loss_mask());
  EXPECT_EQ(dataset.num_documents(), 300u);
  EXPECT_EQ(dataset.num_tokens(), corpus.stream().size());
  EXPECT_EQ(read_all_tokens(dataset), corpus.stream());

  std::vector<std::uint64_t> offsets(dataset.num_documents() + 1);
  dataset.read_doc_offsets(0, offsets);
  EXPECT_EQ(offsets, corpus.offsets());

  const auto& attributes = dataset.attributes();
  EXPECT_EQ(attributes.format_version, kiln::data::kTokenDatasetFormatVersion);
  EXPECT_EQ(attributes.split, "train");
  EXPECT_EQ(attributes.vocab_size, 50257u);
  EXPECT_EQ(attributes.tokenizer_hash, "00112233445566ff");
  EXPECT_EQ(attributes.source_checksum, "aabbccddeeff0011");
  EXPECT_EQ(attributes.created_by, "kiln tests");
  EXPECT_EQ(attributes.special_ids.at("eos"), 50256u);
  EXPECT_EQ(attributes.special_ids.at("bos"), 0u);
  EXPECT_EQ(dataset.checksums().tokens.size(), 16u);
  EXPECT_TRUE(dataset.checksums().loss_mask.empty());
  EXPECT_NO_THROW(dataset.verify());
}

TEST(TokenDataset, VocabOf65536StillFitsUint16) {
  TempDir dir;
  Corpus corpus = make_corpus(10, 65536, 2);
  corpus.documents[3][0] = 65535;
  write_corpus(dir / "train.h5", corpus);
  const auto dataset = TokenDataset::open(dir / "train.h5");
  EXPECT_EQ(dataset.token_bits(), 16);
  EXPECT_EQ(read_all_tokens(dataset), corpus.stream());
}

TEST(TokenDataset, RoundTripUint32WithLossMask) {
  TempDir dir;
  Corpus corpus = make_corpus(200, 128256, 3, 1, 64, /*with_masks=*/true);
  corpus.documents[0][0] = 128254;  // an id that needs more than 16 bits
  write_corpus(dir / "sft.h5", corpus, "val");

  const auto dataset = TokenDataset::open(dir / "sft.h5");
  EXPECT_EQ(dataset.token_bits(), 32);
  EXPECT_TRUE(dataset.has_loss_mask());
  EXPECT_EQ(dataset.attributes().split, "val");
  EXPECT_EQ(read_all_tokens(dataset), corpus.stream());
  std::vector<std::uint8_t> mask(dataset.num_tokens());
  dataset.read_loss_mask(0, mask);
  EXPECT_EQ(mask, corpus.mask_stream());
  EXPECT_EQ(dataset.checksums().loss_mask.size(), 16u);
  EXPECT_NO_THROW(dataset.verify());
}

TEST(TokenDataset, EmptyDatasetIsValid) {
  TempDir dir;
  write_corpus(dir / "empty.h5", make_corpus(0, 1000, 4));
  const auto dataset = TokenDataset::open(dir / "empty.h5");
  EXPECT_EQ(dataset.num_tokens(), 0u);
  EXPECT_EQ(dataset.num_documents(), 0u);
  EXPECT_TRUE(dataset.document_starts_in(0, 0).empty());
  EXPECT_NO_THROW(dataset.verify());
}

TEST(TokenDataset, PartialReadsAcrossChunkAndFlushEdges) {
  TempDir dir;
  // ~1.3M tokens: several 256K-token chunks and more than one 1M-token writer flush.
  const Corpus corpus = make_corpus(2600, 32000, 5, 400, 600);
  write_corpus(dir / "big.h5", corpus);
  const auto expected = corpus.stream();
  ASSERT_GT(expected.size(), 1'100'000u);

  const auto dataset = TokenDataset::open(dir / "big.h5");
  const std::uint64_t chunk = 1 << 18;
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges = {
      {chunk - 5, 10},      {2 * chunk - 1, 2},        {chunk, chunk},  {0, 3 * chunk + 17},
      {(1 << 20) - 3, 7},   {expected.size() - 9, 9},  {12345, 1}};
  for (const auto& [begin, count] : ranges) {
    std::vector<std::uint32_t> got(count);
    dataset.read_tokens(begin, got);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), expected.begin() + static_cast<long>(begin)))
        << "range [" << begin << ", " << begin + count << ")";
  }
  EXPECT_NO_THROW(dataset.verify());
}

TEST(TokenDataset, ReadsAtTheBoundariesAndOutOfRange) {
  TempDir dir;
  const Corpus corpus = make_corpus(20, 500, 6);
  write_corpus(dir / "train.h5", corpus);
  const auto dataset = TokenDataset::open(dir / "train.h5");
  const auto expected = corpus.stream();
  const std::uint64_t n = dataset.num_tokens();

  std::vector<std::uint32_t> last(1);
  dataset.read_tokens(n - 1, last);
  EXPECT_EQ(last[0], expected.back());
  EXPECT_NO_THROW(dataset.read_tokens(n, std::span<std::uint32_t>{}));

  std::vector<std::uint32_t> two(2);
  expect_error([&] { dataset.read_tokens(n - 1, two); }, {"train.h5", "out of range"});
  std::vector<std::uint64_t> offsets(2);
  expect_error([&] { dataset.read_doc_offsets(dataset.num_documents(), offsets); },
               {"doc_offsets", "out of range"});
  std::vector<std::uint8_t> mask(1);
  expect_error([&] { dataset.read_loss_mask(0, mask); }, {"without /loss_mask"});
  expect_error([&] { dataset.document_starts_in(0, n + 1); }, {"out of range"});
}

TEST(TokenDataset, DocumentStartsMatchOffsets) {
  TempDir dir;
  // Enough documents for several blocks of the sparse index (1024 documents each).
  const Corpus corpus = make_corpus(5000, 1000, 7, 1, 9);
  write_corpus(dir / "train.h5", corpus);
  const auto dataset = TokenDataset::open(dir / "train.h5");
  const auto offsets = corpus.offsets();
  const std::uint64_t n = dataset.num_tokens();

  const auto brute_force = [&](std::uint64_t begin, std::uint64_t end) {
    std::vector<std::uint64_t> starts;
    for (std::size_t d = 0; d + 1 < offsets.size(); ++d) {
      if (offsets[d] >= begin && offsets[d] < end) starts.push_back(offsets[d]);
    }
    return starts;
  };
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges = {
      {0, 1},          {0, n},        {offsets[1024], offsets[1024] + 1},
      {offsets[1024] - 1, offsets[1024]},  {offsets[2047] + 1, offsets[3000]},
      {n - 1, n},      {n / 2, n / 2 + 100}, {7, 7}};
  for (const auto& [begin, end] : ranges) {
    EXPECT_EQ(dataset.document_starts_in(begin, end), brute_force(begin, end))
        << "range [" << begin << ", " << end << ")";
  }
}

TEST(TokenDataset, VerifyCatchesAFlippedTokenByte) {
  TempDir dir;
  Corpus corpus = make_corpus(50, 60000, 8);
  // A run whose little-endian bytes are the unmistakable "KILNKILN..." to find in the raw file.
  corpus.documents[10].assign(32, 0x494b);
  for (std::size_t i = 1; i < 32; i += 2) corpus.documents[10][i] = 0x4e4c;
  write_corpus(dir / "train.h5", corpus);

  std::string bytes = read_bytes(dir / "train.h5");
  const auto at = bytes.find("KILNKILNKILNKILN");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] = static_cast<char>(bytes[at + 5] ^ 0x01);  // id 0x494b -> 0x484b, still < vocab
  write_bytes(dir / "corrupt.h5", bytes);

  const auto dataset = TokenDataset::open(dir / "corrupt.h5");  // structure is intact
  expect_error([&] { dataset.verify(); }, {"corrupt.h5", "/tokens checksum mismatch"});
}

TEST(TokenDataset, VerifyCatchesAChangedLossMask) {
  TempDir dir;
  Corpus corpus = make_corpus(30, 1000, 9, 1, 64, true);
  corpus.documents[5].assign(40, 7);
  corpus.masks[5].assign(40, 0);
  for (std::size_t i = 0; i < 40; i += 4) corpus.masks[5][i] = 1;  // 1 0 0 0 1 0 0 0 ...
  write_corpus(dir / "sft.h5", corpus);

  std::string bytes = read_bytes(dir / "sft.h5");
  const std::string pattern("\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00"
                            "\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01",
                            29);
  const auto at = bytes.find(pattern);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 1] = 1;
  write_bytes(dir / "sft.h5", bytes);
  expect_error([&] { TokenDataset::open(dir / "sft.h5").verify(); },
               {"/loss_mask checksum mismatch"});
}

TEST(TokenDataset, TruncatedFileIsReported) {
  TempDir dir;
  write_corpus(dir / "train.h5", make_corpus(2000, 50257, 10));
  const std::string bytes = read_bytes(dir / "train.h5");
  write_bytes(dir / "truncated.h5", bytes.substr(0, bytes.size() / 2));
  expect_error([&] { TokenDataset::open(dir / "truncated.h5"); },
               {"truncated.h5", "truncated or damaged"});
}

TEST(TokenDataset, ForeignHdf5FileIsRecognised) {
  TempDir dir;
  const fs::path path = dir / "foreign.h5";
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t size = 4;
  const hid_t space = H5Screate_simple(1, &size, nullptr);
  const hid_t dataset =
      H5Dcreate2(file, "images", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const float values[4] = {1, 2, 3, 4};
  H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
  H5Dclose(dataset);
  H5Sclose(space);
  H5Fclose(file);
  expect_error([&] { TokenDataset::open(path); },
               {"foreign.h5", "not a kiln token dataset", "kiln_format"});
}

TEST(TokenDataset, MissingAndNonHdf5FilesAreReported) {
  TempDir dir;
  expect_error([&] { TokenDataset::open(dir / "nope.h5"); }, {"nope.h5", "no such file"});
  write_bytes(dir / "notes.txt", "just some text, not HDF5 at all\n");
  expect_error([&] { TokenDataset::open(dir / "notes.txt"); }, {"notes.txt", "not an HDF5 file"});
  write_bytes(dir / "empty.h5", "");
  expect_error([&] { TokenDataset::open(dir / "empty.h5"); }, {"empty.h5", "not an HDF5 file"});
  expect_error([&] { TokenDataset::open(dir.path()); }, {"is a directory"});
}

TEST(TokenDataset, MissingDatasetIsReported) {
  TempDir dir;
  write_corpus(dir / "train.h5", make_corpus(5, 100, 11));
  {
    RawFile raw(dir / "train.h5");
    ASSERT_GE(H5Ldelete(raw.id, "doc_offsets", H5P_DEFAULT), 0);
  }
  expect_error([&] { TokenDataset::open(dir / "train.h5"); },
               {"train.h5", "missing dataset /doc_offsets"});
}

TEST(TokenDataset, WrongDtypeIsReported) {
  TempDir dir;
  write_corpus(dir / "train.h5", make_corpus(5, 100, 12));
  {
    RawFile raw(dir / "train.h5");
    ASSERT_GE(H5Ldelete(raw.id, "tokens", H5P_DEFAULT), 0);
    const hsize_t size = 8;
    const hid_t space = H5Screate_simple(1, &size, nullptr);
    const hid_t tokens =
        H5Dcreate2(raw.id, "tokens", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(tokens);
    H5Sclose(space);
  }
  expect_error([&] { TokenDataset::open(dir / "train.h5"); },
               {"train.h5", "/tokens has type float32", "expected uint16 or uint32"});
}

TEST(TokenDataset, NewerFormatVersionIsRefused) {
  TempDir dir;
  write_corpus(dir / "train.h5", make_corpus(5, 100, 13));
  {
    RawFile raw(dir / "train.h5");
    const hid_t attribute = H5Aopen(raw.id, "format_version", H5P_DEFAULT);
    const std::uint64_t version = kiln::data::kTokenDatasetFormatVersion + 1;
    H5Awrite(attribute, H5T_NATIVE_UINT64, &version);
    H5Aclose(attribute);
  }
  expect_error([&] { TokenDataset::open(dir / "train.h5"); },
               {"train.h5", "format version 2", "newer kiln"});
}

TEST(TokenDataset, InconsistentCountsAreReported) {
  TempDir dir;
  write_corpus(dir / "train.h5", make_corpus(5, 100, 14));
  {
    RawFile raw(dir / "train.h5");
    const hid_t attribute = H5Aopen(raw.id, "num_tokens", H5P_DEFAULT);
    const std::uint64_t wrong = 3;
    H5Awrite(attribute, H5T_NATIVE_UINT64, &wrong);
    H5Aclose(attribute);
  }
  expect_error([&] { TokenDataset::open(dir / "train.h5"); },
               {"train.h5", "/tokens has", "the attributes say 3"});
}

TEST(TokenDataset, TempFileIsNeverVisibleUnderTheFinalName) {
  TempDir dir;
  const fs::path path = dir / "train.h5";
  const fs::path temp = dir / "train.h5.tmp";
  const Corpus corpus = make_corpus(10, 100, 15);
  {
    TokenDatasetWriter writer(path, kiln::testing::test_attributes(100));
    writer.append_document(corpus.documents[0]);
    EXPECT_TRUE(fs::exists(temp));
    EXPECT_FALSE(fs::exists(path));
    // The writer is abandoned (as when prepare fails) without finish().
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(fs::exists(path));

  TokenDatasetWriter writer(path, kiln::testing::test_attributes(100));
  writer.append_document(corpus.documents[0]);
  writer.finish();
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(fs::exists(temp));
}

TEST(TokenDataset, FailedPublishLeavesNoFileBehind) {
  TempDir dir;
  // The final name is taken by a non-empty directory, so the rename in finish() must fail.
  fs::create_directories(dir / "train.h5" / "occupied");
  {
    TokenDatasetWriter writer(dir / "train.h5", kiln::testing::test_attributes(100));
    writer.append_document(std::vector<std::uint32_t>{1, 2, 3});
    expect_error([&] { writer.finish(); }, {"cannot rename", "train.h5.tmp"});
  }
  EXPECT_FALSE(fs::exists(dir / "train.h5.tmp"));
  EXPECT_TRUE(fs::is_directory(dir / "train.h5" / "occupied"));
}

TEST(TokenDataset, WriterRefusesBadDocumentsAndStaysUsable) {
  TempDir dir;
  TokenDatasetWriter writer(dir / "train.h5", kiln::testing::test_attributes(100), true);
  const std::vector<std::uint32_t> good = {1, 2, 99};
  const std::vector<std::uint8_t> mask = {0, 1, 1};
  const std::vector<std::uint32_t> too_big = {1, 100, 99};
  expect_error([&] { writer.append_document(too_big, mask); },
               {"train.h5", "token id 100", "vocab_size is 100"});
  expect_error([&] { writer.append_document(good, std::vector<std::uint8_t>{1, 1}); },
               {"3 tokens but a loss mask of 2"});
  expect_error([&] { writer.append_document(good, std::vector<std::uint8_t>{0, 2, 1}); },
               {"loss mask value 2"});
  expect_error([&] { writer.append_document({}, {}); }, {"empty"});
  writer.append_document(good, mask);
  EXPECT_EQ(writer.documents_written(), 1u);
  EXPECT_EQ(writer.tokens_written(), 3u);
  writer.finish();
  expect_error([&] { writer.append_document(good, mask); }, {"after finish"});

  const auto dataset = TokenDataset::open(dir / "train.h5");
  EXPECT_EQ(read_all_tokens(dataset), good);
  EXPECT_NO_THROW(dataset.verify());
}

TEST(TokenDataset, WriterRefusesAMaskItWasNotCreatedFor) {
  TempDir dir;
  TokenDatasetWriter writer(dir / "train.h5", kiln::testing::test_attributes(100));
  const std::vector<std::uint32_t> tokens = {1, 2};
  expect_error([&] { writer.append_document(tokens, std::vector<std::uint8_t>{1, 1}); },
               {"created without one"});
  auto no_vocab = kiln::testing::test_attributes(100);
  no_vocab.vocab_size = 0;
  expect_error([&] { TokenDatasetWriter bad(dir / "x.h5", no_vocab); }, {"x.h5", "vocab_size 0"});
  EXPECT_FALSE(fs::exists(dir / "x.h5.tmp"));
}

TEST(TokenDataset, ConcurrentReadersSeeTheRightTokens) {
  TempDir dir;
  const Corpus corpus = make_corpus(400, 50257, 16, 100, 900);
  write_corpus(dir / "train.h5", corpus);
  const auto dataset = TokenDataset::open(dir / "train.h5");
  const auto expected = corpus.stream();
  std::atomic<int> mismatches{0};
  const auto reader = [&](std::uint64_t stride) {
    std::vector<std::uint32_t> window(257);
    for (std::uint64_t begin = stride; begin + window.size() <= expected.size(); begin += 997 * stride) {
      dataset.read_tokens(begin, window);
      if (!std::equal(window.begin(), window.end(), expected.begin() + static_cast<long>(begin))) {
        ++mismatches;
      }
      (void)dataset.document_starts_in(begin, begin + 257);
    }
  };
  std::thread first(reader, 1);
  std::thread second(reader, 3);
  first.join();
  second.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
