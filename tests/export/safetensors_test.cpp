// safetensors reader/writer: round trips in F32/F16/BF16, sharded directories, and every kind
// of bad header the format forbids, each a kiln::Error naming the file and the problem.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/dataset/test_datasets.hpp"
#include "trainer/core/error.hpp"
#include "trainer/export/hf_weights.hpp"
#include "trainer/export/safetensors_reader.hpp"
#include "trainer/export/safetensors_writer.hpp"

namespace kiln::interop {
namespace {

namespace fs = std::filesystem;
using kiln::testing::TempDir;

// A raw file: 8-byte little-endian header length, header text, then `data_bytes` zero bytes.
void write_raw(const std::filesystem::path& path, const std::string& header, std::size_t data_bytes,
               std::uint64_t claimed_length = 0) {
  std::ofstream out(path, std::ios::binary);
  std::uint64_t length = claimed_length ? claimed_length : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((length >> (8 * i)) & 0xff));
  out << header << std::string(data_bytes, '\0');
}

void expect_error(const std::filesystem::path& path, const std::string& fragment) {
  try {
    SafetensorsReader reader(path);
    ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
    EXPECT_NE(message.find(path.filename().string()), std::string::npos) << "names the file: " << message;
  }
}

TEST(Safetensors, RoundTripsEveryWeightDtype) {
  TempDir dir;
  const std::vector<float> values{1.0f, -2.5f, 0.15625f, 3.0e-3f, 65504.0f, -0.0f};
  const std::vector<SafetensorsEntry> entries{{"a.f32", SafetensorsDtype::F32, {2, 3}},
                                              {"b.f16", SafetensorsDtype::F16, {6}},
                                              {"c.bf16", SafetensorsDtype::BF16, {3, 2}}};
  SafetensorsWriter writer(dir / "m.safetensors", entries, {{"format", "pt"}});
  for (const auto& entry : entries) writer.write_floats(entry.name, values);
  writer.finish();

  const SafetensorsReader reader(dir / "m.safetensors");
  EXPECT_EQ(reader.metadata().at("format"), "pt");
  ASSERT_EQ(reader.tensors().size(), 3u);
  EXPECT_EQ(reader.tensor("c.bf16").shape, (std::vector<std::uint64_t>{3, 2}));
  EXPECT_EQ(reader.read_floats("a.f32"), values);
  const auto f16 = reader.read_floats("b.f16");
  const auto bf16 = reader.read_floats("c.bf16");
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_NEAR(f16[i], values[i], std::fabs(values[i]) * 1e-3) << i;
    EXPECT_NEAR(bf16[i], values[i], std::fabs(values[i]) * 8e-3) << i;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "m.safetensors.tmp"));
}

TEST(Safetensors, HeaderIsPaddedToEightBytes) {
  const std::string header = safetensors_header({{"x", SafetensorsDtype::F32, {1}}}, {});
  EXPECT_EQ(header.size() % 8, 0u);
  EXPECT_EQ(header.front(), '{');
}

TEST(Safetensors, WriterRefusesOutOfOrderAndIncompleteFiles) {
  TempDir dir;
  {
    SafetensorsWriter writer(dir / "m.safetensors", {{"a", SafetensorsDtype::F32, {2}}, {"b", SafetensorsDtype::F32, {1}}});
    EXPECT_THROW(writer.write_floats("b", std::vector<float>{1.0f}), Error);
    EXPECT_THROW(writer.write_floats("a", std::vector<float>{1.0f}), Error);  // wrong size
    writer.write_floats("a", std::vector<float>{1.0f, 2.0f});
    EXPECT_THROW(writer.finish(), Error);
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "m.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir / "m.safetensors.tmp"));
}

TEST(Safetensors, TruncatedFiles) {
  TempDir dir;
  {
    std::ofstream(dir / "short.safetensors") << "abc";
  }
  expect_error(dir / "short.safetensors", "shorter than the 8-byte header length");
  const std::string header = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  write_raw(dir / "cut.safetensors", header, 8);
  expect_error(dir / "cut.safetensors", "truncated or padded");
  write_raw(dir / "cut_header.safetensors", header.substr(0, 10), 0, header.size());
  expect_error(dir / "cut_header.safetensors", "only 10 follow");
}

TEST(Safetensors, HeaderClaimingTenGigabytes) {
  TempDir dir;
  write_raw(dir / "huge.safetensors", "{}", 0, 10'000'000'000ULL);
  expect_error(dir / "huge.safetensors", "exceeds the format's limit");
}

TEST(Safetensors, OverlappingAndGappedOffsets) {
  TempDir dir;
  write_raw(dir / "overlap.safetensors",
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12);
  expect_error(dir / "overlap.safetensors", "overlap");
  write_raw(dir / "gap.safetensors",
            R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 12);
  expect_error(dir / "gap.safetensors", "belong to no tensor");
}

TEST(Safetensors, DtypesAndSizes) {
  TempDir dir;
  write_raw(dir / "dtype.safetensors", R"({"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})", 4);
  expect_error(dir / "dtype.safetensors", "unknown dtype \"F12\"");
  write_raw(dir / "size.safetensors", R"({"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}})", 4);
  expect_error(dir / "size.safetensors", "needs 6");
  write_raw(dir / "dup.safetensors",
            R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", 2);
  expect_error(dir / "dup.safetensors", "names tensor 'a' twice");
  write_raw(dir / "field.safetensors", R"({"a":{"dtype":"U8","shape":[1]}})", 0);
  expect_error(dir / "field.safetensors", "missing field \"data_offsets\"");
  write_raw(dir / "json.safetensors", R"({"a": )", 0);
  expect_error(dir / "json.safetensors", "not valid JSON");
  write_raw(dir / "array.safetensors", "[1, 2]", 0);
  expect_error(dir / "array.safetensors", "starting with '{'");
}

TEST(Safetensors, NonWeightDtypesAreReadableOnlyAsBytes) {
  TempDir dir;
  write_raw(dir / "u8.safetensors", R"({"mask":{"dtype":"BOOL","shape":[2,2],"data_offsets":[0,4]}})", 4);
  const SafetensorsReader reader(dir / "u8.safetensors");
  EXPECT_EQ(reader.read_bytes("mask").size(), 4u);
  EXPECT_THROW(reader.read_floats("mask"), Error);
  EXPECT_THROW(reader.tensor("absent"), Error);
}

TEST(Safetensors, ShardPlanAndIndex) {
  const std::vector<SafetensorsEntry> entries{{"a", SafetensorsDtype::F32, {10}},   // 40 bytes
                                              {"b", SafetensorsDtype::F32, {10}},   // 40
                                              {"c", SafetensorsDtype::F32, {30}},   // 120: alone
                                              {"d", SafetensorsDtype::F16, {4}}};   // 8
  const auto shards = plan_shards(entries, 100);
  ASSERT_EQ(shards.size(), 3u);
  EXPECT_EQ(shards[0].size(), 2u);
  EXPECT_EQ(shards[1].front().name, "c");
  EXPECT_EQ(shards[2].front().name, "d");
  EXPECT_EQ(shard_file_name(0, 3), "model-00001-of-00003.safetensors");
  EXPECT_EQ(shard_file_name(0, 1), "model.safetensors");
  const auto index = nlohmann::json::parse(safetensors_index_json(shards));
  EXPECT_EQ(index["metadata"]["total_size"], 208);
  EXPECT_EQ(index["weight_map"]["c"], "model-00002-of-00003.safetensors");
}

TEST(Safetensors, ShardedDirectoryIsReadThroughItsIndex) {
  TempDir dir;
  const std::vector<SafetensorsEntry> entries{{"x", SafetensorsDtype::F32, {2}}, {"y", SafetensorsDtype::F32, {3}}};
  const auto shards = plan_shards(entries, 8);
  for (std::size_t s = 0; s < shards.size(); ++s) {
    SafetensorsWriter writer(dir / shard_file_name(s, shards.size()), shards[s]);
    for (const auto& entry : shards[s]) writer.write_floats(entry.name, std::vector<float>(entry.shape[0], float(s + 1)));
    writer.finish();
  }
  std::ofstream(dir / "model.safetensors.index.json") << safetensors_index_json(shards);
  const HfWeights weights(dir.path());
  EXPECT_EQ(weights.names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(weights.read_floats("y"), (std::vector<float>{2, 2, 2}));

  // An index that sends a name to the wrong shard is refused.
  std::ofstream(dir / "model.safetensors.index.json")
      << R"({"weight_map": {"x": "model-00002-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}})";
  EXPECT_THROW(HfWeights{dir.path()}, Error);
}

TEST(Safetensors, DirectoryWithoutWeights) {
  TempDir dir;
  try {
    HfWeights weights(dir.path());
    ADD_FAILURE();
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("model.safetensors"), std::string::npos);
  }
}

TEST(Safetensors, NegativeAndOutOfRangeNumbersInTheHeader) {
  TempDir dir;
  write_raw(dir / "negative.safetensors", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", 1);
  expect_error(dir / "negative.safetensors", "data_offsets must hold non-negative integers");
  write_raw(dir / "overflow.safetensors", R"({"a":{"dtype":"U8","shape":[1e999],"data_offsets":[0,1]}})", 1);
  expect_error(dir / "overflow.safetensors", "not valid JSON");
  write_raw(dir / "past.safetensors", R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", 4);
  expect_error(dir / "past.safetensors", "the data section is 4 bytes but the tensors cover 8");
  write_raw(dir / "wide.safetensors",
            R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8);
  expect_error(dir / "wide.safetensors", "too large to address");
}

TEST(Safetensors, WeightsThatAreNotRegularFilesAreRefusedByName) {
  TempDir dir;
  fs::create_symlink(dir / "model.safetensors", dir / "model.safetensors");  // a loop
  try {
    HfWeights weights(dir.path());
    ADD_FAILURE() << "opened a symlink loop";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("model.safetensors' is a symbolic link loop"), std::string::npos)
        << error.what();
  }
  fs::remove(dir / "model.safetensors");
  fs::create_directory(dir / "model.safetensors");
  expect_error(dir / "model.safetensors", "is a directory");
}

TEST(Safetensors, IndexPointingAtMissingOrBadShards) {
  TempDir dir;
  const auto index_error = [&](const std::string& index) {
    std::ofstream(dir / "model.safetensors.index.json") << index;
    try {
      HfWeights weights(dir.path());
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string("(no error)");
  };
  std::string message = index_error(R"({"weight_map": {"x": "model-00001-of-00002.safetensors"}})");
  EXPECT_NE(message.find("weight_map names shard 'model-00001-of-00002.safetensors', which is missing"),
            std::string::npos)
      << message;
  fs::create_directory(dir / "shard.safetensors");
  message = index_error(R"({"weight_map": {"x": "shard.safetensors"}})");
  EXPECT_NE(message.find("shard.safetensors' is a directory"), std::string::npos) << message;
  message = index_error(R"({"weight_map": {"x": "../outside.safetensors"}})");
  EXPECT_NE(message.find("must name a file beside the index"), std::string::npos) << message;
  message = index_error(R"({"weight_map": {"x": 1e999}})");
  EXPECT_NE(message.find("model.safetensors.index.json: not valid JSON"), std::string::npos) << message;
  message = index_error(R"({"weight_map": )");
  EXPECT_NE(message.find("not valid JSON"), std::string::npos) << message;
}

}  // namespace
}  // namespace kiln::interop
