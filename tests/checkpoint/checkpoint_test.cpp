#include <gtest/gtest.h>

#include <limits>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <memory>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "trainer/checkpoint/checkpoint_finder.hpp"
#include "trainer/checkpoint/checkpoint_names.hpp"
#include "trainer/checkpoint/checkpoint_reader.hpp"
#include "trainer/checkpoint/checkpoint_writer.hpp"
#include "trainer/core/error.hpp"

namespace {

namespace fs = std::filesystem;
using kiln::checkpoint::CheckpointMeta;
using kiln::checkpoint::CheckpointReader;
using kiln::checkpoint::CheckpointWriter;
using kiln::checkpoint::Shape;

std::vector<float> pattern(std::int64_t step, std::size_t count) {
  std::vector<float> values(count);
  for (std::size_t i = 0; i < count; ++i) values[i] = static_cast<float>(step) * 1000.0f + static_cast<float>(i);
  return values;
}

CheckpointMeta meta_for(std::int64_t step) {
  CheckpointMeta meta;
  meta.tokens_seen = step * 4096;
  meta.layout.dp = 2;
  meta.layout.zero = 1;
  meta.recipe = {{"model", {{"d_model", 6}}}};
  meta.loader = {{"epoch", 1}, {"position", step * 8}};
  meta.rng = {{"state", "0123456789abcdef"}};
  meta.schedule = {{"kind", "cosine"}};
  return meta;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class Checkpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() / fmt::format("kiln_checkpoint_{}_{}", ::getpid(), test->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path checkpoints() const { return root_ / "run" / "checkpoints"; }
  fs::path step_dir(std::int64_t step) const {
    return checkpoints() / kiln::checkpoint::step_dir_name(step);
  }

  // A small model: an 8x6 float matrix and a float64 vector, values depending on the step.
  fs::path write_step(std::int64_t step, int keep_last = 0) {
    CheckpointWriter writer(checkpoints(), step);
    writer.add_whole("/model/wte.weight", {8, 6}, pattern(step, 48));
    const std::vector<double> bias = {0.5, -1.25, static_cast<double>(step)};
    writer.add_whole("model/ln_f.bias", {3}, bias);
    writer.set_meta(meta_for(step));
    return writer.commit(keep_last);
  }

  // Flips one byte in the middle of a file.
  static void corrupt(const fs::path& file) {
    std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
    const auto middle = static_cast<std::streamoff>(fs::file_size(file) / 2);
    io.seekg(middle);
    char byte = 0;
    io.read(&byte, 1);
    io.seekp(middle);
    byte = static_cast<char>(~byte);
    io.write(&byte, 1);
  }

  std::optional<kiln::checkpoint::FoundCheckpoint> find(std::string& messages) const {
    std::ostringstream out;
    auto found = kiln::checkpoint::find_latest_valid(checkpoints(), out);
    messages = out.str();
    return found;
  }

  fs::path root_;
};

TEST_F(Checkpoint, RoundTripKeepsValuesShapesAndMeta) {
  const fs::path dir = write_step(100);
  EXPECT_EQ(dir, step_dir(100));
  EXPECT_TRUE(fs::exists(dir / "rank_00000.h5"));
  EXPECT_TRUE(fs::exists(dir / "meta.json"));
  EXPECT_TRUE(fs::exists(dir / "complete"));
  EXPECT_FALSE(fs::exists(checkpoints() / "step_00000100.tmp"));

  const CheckpointReader reader(dir);
  EXPECT_EQ(reader.step(), 100);
  EXPECT_EQ(reader.meta().tokens_seen, 409600);
  EXPECT_EQ(reader.meta().layout.dp, 2);
  EXPECT_EQ(reader.meta().layout.zero, 1);
  EXPECT_EQ(reader.meta().loader, meta_for(100).loader);
  EXPECT_EQ(reader.meta().rng, meta_for(100).rng);
  EXPECT_EQ(reader.meta().recipe, meta_for(100).recipe);
  EXPECT_EQ(reader.meta().schedule, meta_for(100).schedule);
  EXPECT_EQ(reader.meta().checksums.size(), 1u);
  EXPECT_EQ(reader.tensor_names(), (std::vector<std::string>{"/model/ln_f.bias", "/model/wte.weight"}));
  EXPECT_EQ(reader.read("model/wte.weight"), pattern(100, 48));
  EXPECT_EQ(reader.read_double("/model/ln_f.bias"), (std::vector<double>{0.5, -1.25, 100.0}));
  EXPECT_EQ(reader.read("/model/ln_f.bias"), (std::vector<float>{0.5f, -1.25f, 100.0f}));

  const auto& info = reader.tensor("/model/wte.weight");
  ASSERT_EQ(info.pieces.size(), 1u);
  EXPECT_EQ(info.global_shape, (Shape{8, 6}));
  EXPECT_EQ(info.pieces[0].region.offset, (Shape{0, 0}));
  EXPECT_EQ(info.pieces[0].dtype, kiln::checkpoint::PieceDtype::float32);
  EXPECT_EQ(reader.tensor("/model/ln_f.bias").pieces[0].dtype, kiln::checkpoint::PieceDtype::float64);
  EXPECT_THROW((void)reader.tensor("/model/missing"), kiln::Error);
}

TEST_F(Checkpoint, LatestPointerNamesNewestStep) {
  write_step(100);
  write_step(200);
  EXPECT_EQ(read_text(checkpoints() / "latest"), "step_00000200\n");
  std::string messages;
  const auto found = find(messages);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->step, 200);
  EXPECT_EQ(found->dir, step_dir(200));
  EXPECT_EQ(messages, "");
}

TEST_F(Checkpoint, RetentionKeepsNewestAndNeverTouchesNewerSteps) {
  write_step(100, 2);
  write_step(200, 2);
  write_step(300, 2);
  EXPECT_FALSE(fs::exists(step_dir(100)));
  EXPECT_TRUE(fs::exists(step_dir(200)));
  EXPECT_TRUE(fs::exists(step_dir(300)));
  // A run resumed from 200 that saves 250: 300 belongs to the abandoned continuation.
  write_step(250, 1);
  EXPECT_FALSE(fs::exists(step_dir(200)));
  EXPECT_TRUE(fs::exists(step_dir(250)));
  EXPECT_TRUE(fs::exists(step_dir(300)));
  std::string messages;
  EXPECT_EQ(find(messages)->step, 250);  // `latest` decides, not the largest number
}

TEST_F(Checkpoint, TornTemporaryDirectoryIsSkippedWithMessage) {
  write_step(100);
  {
    CheckpointWriter interrupted(checkpoints(), 200);
    interrupted.add_whole("/model/wte.weight", {8, 6}, pattern(200, 48));
  }  // destroyed without commit, as by a crash
  ASSERT_TRUE(fs::exists(checkpoints() / "step_00000200.tmp"));
  std::string messages;
  const auto found = find(messages);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->step, 100);
  EXPECT_NE(messages.find("step_00000200.tmp: torn"), std::string::npos) << messages;
  // The next commit clears leftovers.
  write_step(300);
  EXPECT_FALSE(fs::exists(checkpoints() / "step_00000200.tmp"));
}

TEST_F(Checkpoint, FlippedByteIsDetectedAndPreviousStepUsed) {
  write_step(100);
  write_step(200);
  corrupt(step_dir(200) / "rank_00000.h5");
  std::string messages;
  const auto found = find(messages);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->step, 100);
  EXPECT_NE(messages.find("skipping checkpoint " + step_dir(200).string() + ": rank_00000.h5 is corrupt"),
            std::string::npos)
      << messages;
  std::ostringstream ignored;
  EXPECT_THROW(kiln::checkpoint::resolve_checkpoint(step_dir(200), ignored), kiln::Error);
}

TEST_F(Checkpoint, MissingOrEditedMetadataIsDetected) {
  write_step(100);
  write_step(200);
  write_step(300);
  fs::remove(step_dir(300) / "meta.json");
  auto meta = read_text(step_dir(200) / "meta.json");
  meta.replace(meta.find("\"tokens_seen\": 819200"), 21, "\"tokens_seen\": 819201");
  std::ofstream(step_dir(200) / "meta.json") << meta;
  std::string messages;
  const auto found = find(messages);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->step, 100);
  EXPECT_NE(messages.find("step_00000300: meta.json is missing"), std::string::npos) << messages;
  EXPECT_NE(messages.find("step_00000200: meta.json does not match the checksum"), std::string::npos)
      << messages;
}

TEST_F(Checkpoint, MissingCompleteMarkerAndDanglingLatestFallBack) {
  write_step(100);
  write_step(200);
  fs::remove(step_dir(200) / "complete");
  std::string messages;
  EXPECT_EQ(find(messages)->step, 100);
  EXPECT_NE(messages.find("no 'complete' marker"), std::string::npos) << messages;
  fs::remove_all(step_dir(200));  // `latest` now names a directory that is gone
  EXPECT_EQ(find(messages)->step, 100);
  EXPECT_NE(messages.find("step_00000200: does not exist"), std::string::npos) << messages;
}

TEST_F(Checkpoint, NothingValidGivesNoneAndResolveExplains) {
  std::string messages;
  EXPECT_FALSE(find(messages));  // no directory at all
  write_step(100);
  corrupt(step_dir(100) / "rank_00000.h5");
  EXPECT_FALSE(find(messages));
  std::ostringstream ignored;
  try {
    kiln::checkpoint::resolve_checkpoint(checkpoints(), ignored);
    FAIL() << "resolved a corrupt checkpoint";
  } catch (const kiln::Error& error) {
    EXPECT_NE(std::string(error.what()).find("no valid checkpoint in"), std::string::npos);
  }
}

TEST_F(Checkpoint, ResolveAcceptsStepCheckpointsAndRunDirectories) {
  write_step(100);
  write_step(200);
  std::ostringstream messages;
  using kiln::checkpoint::resolve_checkpoint;
  EXPECT_EQ(resolve_checkpoint(step_dir(100), messages).step, 100);
  EXPECT_EQ(resolve_checkpoint(step_dir(100).string() + "/", messages).step, 100);
  EXPECT_EQ(resolve_checkpoint(checkpoints(), messages).step, 200);
  EXPECT_EQ(resolve_checkpoint(checkpoints().parent_path(), messages).dir, step_dir(200));
  EXPECT_THROW(resolve_checkpoint(root_ / "nope", messages), kiln::Error);
  EXPECT_THROW(resolve_checkpoint(step_dir(100) / "meta.json", messages), kiln::Error);
}

TEST_F(Checkpoint, SavingTheSameStepAgainReplacesIt) {
  write_step(100);
  {
    CheckpointWriter writer(checkpoints(), 100);
    writer.add_whole("/model/wte.weight", {8, 6}, pattern(7, 48));
    writer.set_meta(meta_for(100));
    writer.commit();
  }
  EXPECT_EQ(CheckpointReader(step_dir(100)).read("/model/wte.weight"), pattern(7, 48));
  EXPECT_FALSE(fs::exists(checkpoints() / "step_00000100.replaced"));
}

TEST_F(Checkpoint, WriterRefusesInconsistentPieces) {
  CheckpointWriter writer(checkpoints(), 1);
  const auto values = pattern(0, 12);
  EXPECT_THROW(writer.add("/w", {4, 4}, {0, 0}, values, {4, 4}), kiln::Error);  // 12 != 16
  EXPECT_THROW(writer.add("/w", {4, 4}, {2, 0}, values, {3, 4}), kiln::Error);  // outside
  EXPECT_THROW(writer.add("/w", {4, 4}, {0}, values, {3, 4}), kiln::Error);     // rank mismatch
  EXPECT_THROW(writer.add("/a/../b", {12}, {0}, values, {12}), kiln::Error);    // bad name
  writer.add("/w", {4, 3}, {0, 0}, values, {4, 3});
  EXPECT_THROW(writer.commit(), kiln::Error);  // no meta
}

// One rank may hold several pieces of one tensor (a ZeRO shard boundary inside a matrix).
TEST_F(Checkpoint, OneRankMayWriteSeveralPiecesOfATensor) {
  {
    CheckpointWriter writer(checkpoints(), 3);
    const auto all = pattern(0, 24);  // a 4x6 tensor in three pieces: row 0 tail, rows 1-2, row 3 head
    writer.add("/m", {4, 6}, {0, 2}, std::span<const float>(all).subspan(2, 4), {1, 4});
    writer.add("/m", {4, 6}, {1, 0}, std::span<const float>(all).subspan(6, 12), {2, 6});
    writer.add("/m", {4, 6}, {3, 0}, std::span<const float>(all).subspan(18, 3), {1, 3});
    writer.add("/m", {4, 6}, {0, 0}, std::span<const float>(all).subspan(0, 2), {1, 2});
    writer.add("/m", {4, 6}, {3, 3}, std::span<const float>(all).subspan(21, 3), {1, 3});
    CheckpointMeta meta;
    writer.set_meta(meta);
    writer.finish_rank_file();
    writer.commit();
  }
  const CheckpointReader reader(step_dir(3));
  EXPECT_EQ(reader.tensor("/m").pieces.size(), 5u);
  EXPECT_EQ(reader.read("/m"), pattern(0, 24));
}

// A global 8x12 matrix (value = 100 * row + column) stored as pieces written by separate ranks
// into one step, then read back in regions that cut across the pieces.
class CheckpointRegions : public Checkpoint {
 protected:
  static constexpr std::uint64_t kRows = 8, kCols = 12;
  static float value_at(std::uint64_t row, std::uint64_t col) {
    return static_cast<float>(100 * row + col);
  }

  // pieces: {row offset, col offset, rows, cols} per rank.
  void write_pieces(const std::vector<std::array<std::uint64_t, 4>>& pieces) {
    std::vector<std::unique_ptr<CheckpointWriter>> writers;
    for (std::size_t rank = 0; rank < pieces.size(); ++rank) {
      writers.push_back(std::make_unique<CheckpointWriter>(checkpoints(), 10, static_cast<int>(rank)));
    }
    for (std::size_t rank = 0; rank < pieces.size(); ++rank) {
      const auto [r0, c0, rows, cols] = pieces[rank];
      std::vector<float> values;
      for (std::uint64_t r = r0; r < r0 + rows; ++r) {
        for (std::uint64_t c = c0; c < c0 + cols; ++c) values.push_back(value_at(r, c));
      }
      writers[rank]->add("/model/w", {kRows, kCols}, {r0, c0}, values, {rows, cols});
      writers[rank]->finish_rank_file();
    }
    writers[0]->set_meta(meta_for(10));
    writers[0]->commit();
  }

  void expect_region(const CheckpointReader& reader, Shape offset, Shape shape) {
    std::vector<float> out(shape[0] * shape[1], -1.0f);
    reader.read_region("/model/w", offset, shape, out);
    for (std::uint64_t r = 0; r < shape[0]; ++r) {
      for (std::uint64_t c = 0; c < shape[1]; ++c) {
        ASSERT_EQ(out[r * shape[1] + c], value_at(offset[0] + r, offset[1] + c))
            << "region at " << offset[0] << "," << offset[1] << " element " << r << "," << c;
      }
    }
  }

  void expect_arbitrary_regions_read_back() {
    std::ostringstream messages;
    const CheckpointReader reader(kiln::checkpoint::resolve_checkpoint(checkpoints(), messages).dir);
    expect_region(reader, {0, 0}, {kRows, kCols});
    expect_region(reader, {3, 5}, {2, 2});     // straddles row and column cuts
    expect_region(reader, {1, 0}, {6, 12});    // full rows across pieces
    expect_region(reader, {0, 7}, {8, 5});     // full columns across pieces
    expect_region(reader, {7, 11}, {1, 1});    // one element
    expect_region(reader, {2, 1}, {5, 10});
  }
};

TEST_F(CheckpointRegions, TwoRowPieces) {
  write_pieces({{0, 0, 4, 12}, {4, 0, 4, 12}});
  expect_arbitrary_regions_read_back();
  EXPECT_TRUE(fs::exists(step_dir(10) / "rank_00001.h5"));
}

TEST_F(CheckpointRegions, FourRowPiecesOfUnequalSize) {
  write_pieces({{0, 0, 1, 12}, {1, 0, 3, 12}, {4, 0, 2, 12}, {6, 0, 2, 12}});
  expect_arbitrary_regions_read_back();
}

TEST_F(CheckpointRegions, TwoColumnPieces) {
  write_pieces({{0, 0, 8, 6}, {0, 6, 8, 6}});
  expect_arbitrary_regions_read_back();
}

TEST_F(CheckpointRegions, FourColumnPieces) {
  write_pieces({{0, 0, 8, 3}, {0, 3, 8, 3}, {0, 6, 8, 3}, {0, 9, 8, 3}});
  expect_arbitrary_regions_read_back();
}

TEST_F(CheckpointRegions, GridOfFourBlocks) {
  write_pieces({{0, 0, 4, 6}, {0, 6, 4, 6}, {4, 0, 4, 6}, {4, 6, 4, 6}});
  expect_arbitrary_regions_read_back();
  const CheckpointReader reader(step_dir(10));
  EXPECT_EQ(reader.tensor("/model/w").pieces.size(), 4u);
  EXPECT_EQ(reader.pieces().size(), 4u);
}

TEST_F(CheckpointRegions, ReplicatedPiecesMayOverlap) {
  write_pieces({{0, 0, 8, 12}, {0, 0, 8, 12}});  // e.g. a norm weight saved by two TP ranks
  expect_arbitrary_regions_read_back();
}

TEST_F(CheckpointRegions, MissingPieceAndOutOfRangeRegionsAreErrors) {
  write_pieces({{0, 0, 4, 12}, {6, 0, 2, 12}});  // rows 4 and 5 never stored
  const CheckpointReader reader(step_dir(10));
  expect_region(reader, {0, 0}, {4, 12});
  std::vector<float> out(2 * 12);
  try {
    reader.read_region("/model/w", {3, 0}, {2, 12}, out);
    FAIL() << "read a region with a hole";
  } catch (const kiln::Error& error) {
    EXPECT_NE(std::string(error.what()).find("element [4, 0] is in no piece"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(reader.read_region("/model/w", {7, 0}, {2, 12}, out), kiln::Error);  // past the end
  std::vector<float> too_small(5);
  EXPECT_THROW(reader.read_region("/model/w", {0, 0}, {2, 12}, too_small), kiln::Error);
}

// A whole-tensor read sizes its buffer by the global shape the pieces claim: with fewer values
// stored than that it is refused before allocating, naming the tensor.
TEST_F(CheckpointRegions, WholeReadOfATensorWithHolesIsRefusedFirst) {
  write_pieces({{0, 0, 4, 12}, {6, 0, 2, 12}});
  const CheckpointReader reader(step_dir(10));
  try {
    reader.read("/model/w");
    FAIL() << "read a tensor with holes whole";
  } catch (const kiln::Error& error) {
    EXPECT_NE(std::string(error.what()).find("tensor /model/w claims shape [8, 12] (96 elements) but its pieces hold "
                                             "only 72"),
              std::string::npos)
        << error.what();
  }
  EXPECT_THROW(reader.read_double("/model/w"), kiln::Error);
}

TEST(CheckpointShapes, ElementCountSaturatesInsteadOfWrapping) {
  EXPECT_EQ(kiln::checkpoint::element_count({std::uint64_t{1} << 32, std::uint64_t{1} << 32}), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(kiln::checkpoint::element_count({3, 4}), 12u);
  EXPECT_EQ(kiln::checkpoint::element_count({0, std::uint64_t{1} << 63, 4}), 0u);
}

TEST_F(Checkpoint, ThreeDimensionalTensorSplitAlongItsMiddleDimension) {
  const Shape global = {3, 4, 5};
  auto value = [](std::uint64_t a, std::uint64_t b, std::uint64_t c) {
    return static_cast<double>(a * 100 + b * 10 + c);
  };
  CheckpointWriter rank0(checkpoints(), 5, 0);
  CheckpointWriter rank1(checkpoints(), 5, 1);
  for (CheckpointWriter* writer : {&rank0, &rank1}) {
    const std::uint64_t b0 = writer == &rank0 ? 0 : 2;
    std::vector<double> values;
    for (std::uint64_t a = 0; a < 3; ++a) {
      for (std::uint64_t b = b0; b < b0 + 2; ++b) {
        for (std::uint64_t c = 0; c < 5; ++c) values.push_back(value(a, b, c));
      }
    }
    writer->add("/optim/exp_avg/model/k", global, {0, b0, 0}, values, {3, 2, 5});
  }
  rank1.finish_rank_file();
  rank0.set_meta(meta_for(5));
  rank0.commit();
  const CheckpointReader reader(step_dir(5));
  std::vector<double> out(2 * 2 * 3);
  reader.read_region("/optim/exp_avg/model/k", {1, 1, 2}, {2, 2, 3}, out);
  std::size_t i = 0;
  for (std::uint64_t a = 1; a < 3; ++a) {
    for (std::uint64_t b = 1; b < 3; ++b) {
      for (std::uint64_t c = 2; c < 5; ++c) EXPECT_EQ(out[i++], value(a, b, c));
    }
  }
}

}  // namespace
