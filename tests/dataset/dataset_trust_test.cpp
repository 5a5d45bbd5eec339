// Datasets a step may trust: what verify() and open_verified_dataset() refuse (hostile edits,
// files that are not files, masks with nothing to learn), and what a writer does when the disk
// fills up (nothing published, no crash at exit).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include "data/dataset/token_dataset.hpp"
#include "data/dataset/verified_dataset.hpp"
#include "tests/core/error_testing.hpp"
#include "tests/dataset/test_datasets.hpp"
#include "trainer/core/atomic_file.hpp"
#include "trainer/core/checksum.hpp"
#include "trainer/core/error.hpp"

namespace {

using kiln::testing::error_of;

namespace fs = std::filesystem;
using kiln::data::open_verified_dataset;
using kiln::data::TokenDataset;
using kiln::data::TokenDatasetWriter;
using kiln::testing::make_corpus;
using kiln::testing::TempDir;

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

// Swaps doc_offsets[index] and doc_offsets[index + 1] (the probe's "swap two adjacent values").
void swap_offsets(const fs::path& path, std::uint64_t index) {
  std::vector<std::uint64_t> pair(2);
  TokenDataset::open(path).read_doc_offsets(index, pair);  // closed again: HDF5 then opens it read-write
  kiln::testing::overwrite_elements(path, "doc_offsets", index, std::vector<std::uint64_t>{pair[1], pair[0]},
                                    H5T_NATIVE_UINT64);
}

std::string mask_checksum(const fs::path& path) {
  const auto dataset = TokenDataset::open(path);
  std::vector<std::uint8_t> mask(dataset.num_tokens());
  dataset.read_loss_mask(0, mask);
  kiln::Xxh3Stream hash;
  hash.update(mask.data(), mask.size());
  return kiln::to_hex(hash.digest());
}

// Sets RLIMIT_FSIZE (SIGXFSZ ignored) so writes past `bytes` fail with EFBIG, like a full disk.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) : old_handler_(std::signal(SIGXFSZ, SIG_IGN)) {
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit small = old_;
    small.rlim_cur = bytes;
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  void (*old_handler_)(int);
};

TEST(DatasetTrust, SwappedDocOffsetsAreNamedByVerifyAndRefusedForTraining) {
  TempDir dir;
  const auto path = dir / "train.h5";
  kiln::testing::write_corpus(path, make_corpus(300, 1000, 7));
  swap_offsets(path, 100);
  const auto dataset = TokenDataset::open(path);  // the ends are intact: structure passes
  EXPECT_CONTAINS(error_of([&] { dataset.verify(); }), "doc_offsets[101]");
  const std::string refused = error_of([&] { open_verified_dataset(path, "train"); });
  EXPECT_CONTAINS(refused, "train dataset refused");
  EXPECT_CONTAINS(refused, "breaks the order");
  EXPECT_CONTAINS(refused, path.string());
}

TEST(DatasetTrust, DocumentStartsNeverReturnAnUnsortedBoundary) {
  TempDir dir;
  const auto path = dir / "train.h5";
  kiln::testing::write_corpus(path, make_corpus(300, 1000, 7));
  swap_offsets(path, 100);
  const auto dataset = TokenDataset::open(path);
  const std::string error = error_of([&] { dataset.document_starts_in(0, dataset.num_tokens()); });
  EXPECT_CONTAINS(error, "doc_offsets[101]");
  EXPECT_CONTAINS(error, "breaks the order");
}

TEST(DatasetTrust, LossMaskValueOtherThanZeroOrOneIsNamedEvenWithAMatchingChecksum) {
  TempDir dir;
  const auto path = dir / "sft.h5";
  kiln::testing::write_corpus(path, make_corpus(50, 500, 3, 4, 20, /*with_masks=*/true));
  kiln::testing::overwrite_elements(path, "loss_mask", 17, std::vector<std::uint8_t>{2}, H5T_NATIVE_UINT8);
  kiln::testing::overwrite_string_attribute(path, "loss_mask_xxh3", mask_checksum(path));
  EXPECT_CONTAINS(error_of([&] { TokenDataset::open(path).verify(); }), "loss_mask[17] = 2; expected 0 or 1");
}

TEST(DatasetTrust, SpecialIdOutsideTheVocabularyIsRefusedOnOpen) {
  TempDir dir;
  const auto path = dir / "train.h5";
  kiln::testing::write_corpus(path, make_corpus(20, 500, 3));
  kiln::testing::overwrite_string_attribute(path, "special_ids", R"({"bos":0,"eos":500})");
  const std::string error = error_of([&] { TokenDataset::open(path); });
  EXPECT_CONTAINS(error, "special_ids: eos id 500 is outside the vocabulary (vocab_size 500)");
}

TEST(DatasetTrust, AllZeroLossMaskHasNoTrainingTargets) {
  TempDir dir;
  const auto path = dir / "sft.h5";
  auto corpus = make_corpus(40, 500, 5, 4, 20, /*with_masks=*/true);
  for (auto& mask : corpus.masks) std::fill(mask.begin(), mask.end(), std::uint8_t{0});
  kiln::testing::write_corpus(path, corpus);
  EXPECT_EQ(TokenDataset::open(path).verify().tokens_in_loss, 0u);  // a well-formed file...
  const std::string error = error_of([&] { open_verified_dataset(path, "train"); });
  EXPECT_CONTAINS(error, "has no training targets");  // ...with nothing to learn
  EXPECT_CONTAINS(error, "/loss_mask is 0 at all");
}

TEST(DatasetTrust, VerifyCountsTheTokensInTheLoss) {
  TempDir dir;
  const auto path = dir / "sft.h5";
  const auto corpus = make_corpus(40, 500, 5, 4, 20, /*with_masks=*/true);
  kiln::testing::write_corpus(path, corpus);
  const auto mask = corpus.mask_stream();
  EXPECT_EQ(TokenDataset::open(path).verify().tokens_in_loss,
            static_cast<std::uint64_t>(std::count(mask.begin(), mask.end(), std::uint8_t{1})));
  EXPECT_NO_THROW(open_verified_dataset(path, "train"));
}

TEST(DatasetTrust, DevicesAndFifosAreRefusedBeforeAnyRead) {
  TempDir dir;
  EXPECT_CONTAINS(error_of([] { TokenDataset::open("/dev/zero"); }), "is a character device");
  EXPECT_CONTAINS(error_of([] { open_verified_dataset("/dev/zero", "train"); }), "train dataset '/dev/zero'");
  const auto fifo = dir / "pipe.h5";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Without the check this open blocks forever waiting for a writer.
  EXPECT_CONTAINS(error_of([&] { TokenDataset::open(fifo); }), "is a FIFO");
}

TEST(DatasetTrust, AFullDiskPublishesNothing) {
  TempDir dir;
  const auto path = dir / "train.h5";
  const auto corpus = make_corpus(4000, 60000, 9, 100, 400);
  std::string error;
  {
    const FileSizeLimit limit(256 * 1024);
    TokenDatasetWriter writer(path, kiln::testing::test_attributes(corpus.vocab_size));
    error = error_of([&] {
      for (const auto& document : corpus.documents) writer.append_document(document);
      writer.finish();
    });
  }
  EXPECT_CONTAINS(error, "train.h5.tmp");
  EXPECT_FALSE(fs::exists(path)) << "a dataset whose write failed was published";
  EXPECT_FALSE(fs::exists(kiln::temporary_path_for(path))) << "the temporary outlived the writer";
}

// Rewrites every version 3 chunked layout message of a kiln-written file (object header version
// 1: message type 8, 24 bytes) as the version 1 message an old HDF5 writer would have made, with
// a chunk dimension of 0: the damage libhdf5 1.10.8 divides by inside H5Dopen2 (SIGFPE).
int downgrade_layouts_with_a_zero_chunk(const fs::path& path) {
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string v1_message_head("\x08\x00\x18\x00", 4);
  int patched = 0;
  for (auto at = bytes.find(v1_message_head); at != std::string::npos; at = bytes.find(v1_message_head, at + 1)) {
    char* body = bytes.data() + at + 8;
    if (body[0] != 3 || body[1] != 2 || body[2] != 2) continue;  // version 3, chunked, 2 dimensions
    std::string address(body + 3, 8), element_size(body + 15, 4);
    std::string v1 = std::string("\x01\x02\x02\0\0\0\0\0", 8) + address + std::string(4, '\0') + element_size;
    bytes.replace(at + 8, 24, v1);
    ++patched;
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return patched;
}

TEST(DatasetTrust, AZeroChunkDimensionInAnOldLayoutMessageIsRefusedBeforeHdf5DividesByIt) {
  TempDir dir;
  const auto path = dir / "train.h5";
  kiln::testing::write_corpus(path, make_corpus(20, 500, 3));
  ASSERT_GE(downgrade_layouts_with_a_zero_chunk(path), 1);
  const auto error = error_of([&] { (void)TokenDataset::open(path); });
  EXPECT_CONTAINS(error, "layout message declares a chunk dimension of 0");
  EXPECT_CONTAINS(error, "the file is damaged");
}

TEST(DatasetTrust, FilesWithVersion2ObjectHeadersOpenUntouchedByTheLayoutCheck) {
  // HDF5 1.10's newest format (what h5py writes with libver="latest"): "OHDR" headers with
  // checksums, version 4 layout messages. The check must read past them without refusing.
  TempDir dir;
  const auto path = dir / "latest.h5";
  namespace h5 = kiln::data::hdf5;
  std::lock_guard lock(h5::library_mutex());
  {
    h5::Handle access(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
    ASSERT_GE(H5Pset_libver_bounds(access.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), 0);
    h5::Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()), H5Fclose);
    ASSERT_TRUE(file.valid());
    h5::Handle dataset = h5::create_extendable_1d(file.get(), "tokens", H5T_STD_U32LE, 16);
    ASSERT_TRUE(dataset.valid());
    for (int i = 0; i < 6; ++i) {  // attribute messages to walk past before and after the layout
      h5::write_uint64_attribute(dataset.get(), ("attribute_" + std::to_string(i)).c_str(), i);
    }
  }
  std::ifstream in(path, std::ios::binary);
  const std::string bytes(std::istreambuf_iterator<char>(in), {});
  ASSERT_NE(bytes.find("OHDR"), std::string::npos) << "not a version 2 object header file";
  h5::Handle file = h5::open_file_read_only(path);
  ASSERT_TRUE(file.valid());
  EXPECT_TRUE(h5::open_dataset(file.get(), "tokens", 1 << 20).valid());
}

TEST(DatasetTrust, AFailedCloseIsReportedAndTheProcessStillExitsCleanly) {
  // The write that fails only when HDF5 flushes at close: the documents fit in its caches.
  TempDir dir;
  const auto path = dir / "train.h5";
  const auto corpus = make_corpus(200, 60000, 9, 100, 400);
  const auto write_and_exit = [&] {
    std::string error;
    {
      const FileSizeLimit limit(4096);
      TokenDatasetWriter writer(path, kiln::testing::test_attributes(corpus.vocab_size));
      for (const auto& document : corpus.documents) writer.append_document(document);
      error = error_of([&] { writer.finish(); });
    }
    // Exit status 0 only when the error came and nothing was published; a crash at exit (HDF5
    // closing the failed file a second time) is a signal, not status 0.
    std::exit(error != "(no error)" && !fs::exists(path) ? 0 : 1);
  };
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(write_and_exit(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
