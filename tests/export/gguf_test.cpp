// GGUF export read back with kiln's GGUF reader: every metadata key kiln writes (and no
// other), the tokenizer tables, tensor names, ggml dims, types, 32-byte alignment, and the
// values (llama's q/k rows permuted to llama.cpp's pair order, llama3 rope_freqs, Q8_0 within
// its error bound: half a step, plus the fp16 rounding of the scale times 127). llama.cpp itself is exercised by scripts/check_export.py.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "tests/dataset/test_datasets.hpp"
#include "trainer/core/error.hpp"
#include "trainer/export/export_source.hpp"
#include "trainer/export/gguf_export.hpp"
#include "trainer/export/gguf_reader.hpp"
#include "trainer/export/gguf_writer.hpp"
#include "trainer/export/hf_import.hpp"

namespace kiln::interop {
namespace {

namespace fs = std::filesystem;
using kiln::testing::TempDir;

fs::path fixture(const std::string& family) { return fs::path(KILN_FIXTURES_DIR) / "interop" / family; }

template <class T>
T scalar(const GgufReader& reader, const std::string& key) {
  const GgufValue& value = reader.at(key);
  EXPECT_NE(value.type, GgufType::array) << key;
  return std::get<T>(value.scalar);
}

struct Exported {
  TempDir dir;
  std::unique_ptr<ExportSource> source;
  std::unique_ptr<GgufReader> reader;
  Exported(const std::string& family, ExportDtype dtype, const std::string& chat_template = "") {
    import_hf_checkpoint(fixture(family), dir / "run");
    source = std::make_unique<ExportSource>(dir / "run", chat_template);
    export_gguf(*source, {dir / "model.gguf", dtype});
    reader = std::make_unique<GgufReader>(dir / "model.gguf");
  }
};

TEST(GgufExport, LlamaMetadataIsExactlyWhatLlamaCppReads) {
  Exported exported("llama", ExportDtype::f32, "llama3");
  const GgufReader& r = *exported.reader;
  std::set<std::string> keys;
  for (const auto& [key, value] : r.metadata()) keys.insert(key);
  const std::set<std::string> expected_keys{
      "general.architecture", "general.name", "general.file_type", "general.quantization_version",
      "general.alignment", "llama.vocab_size", "llama.context_length", "llama.embedding_length",
      "llama.block_count", "llama.feed_forward_length", "llama.attention.head_count",
      "llama.attention.head_count_kv", "llama.attention.layer_norm_rms_epsilon", "llama.rope.freq_base",
      "llama.rope.dimension_count", "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
      "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id",
      "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.chat_template"};
  EXPECT_EQ(keys, expected_keys);
  EXPECT_EQ(r.version(), 3u);
  EXPECT_EQ(scalar<std::string>(r, "general.architecture"), "llama");
  EXPECT_EQ(scalar<std::uint32_t>(r, "general.file_type"), 0u);
  EXPECT_EQ(scalar<std::uint32_t>(r, "general.quantization_version"), 2u);
  EXPECT_EQ(scalar<std::uint32_t>(r, "general.alignment"), 32u);
  EXPECT_EQ(scalar<std::uint32_t>(r, "llama.vocab_size"), 320u);
  EXPECT_EQ(scalar<std::uint32_t>(r, "llama.context_length"), 128u);
  EXPECT_EQ(scalar<std::uint32_t>(r, "llama.embedding_length"), 32u);
  EXPECT_EQ(scalar<std::uint32_t>(r, "llama.block_count"), 2u);
  EXPECT_EQ(scalar<std::uint32_t>(r, "llama.feed_forward_length"), 64u);
  EXPECT_EQ(scalar<std::uint32_t>(r, "llama.attention.head_count"), 4u);
  EXPECT_EQ(scalar<std::uint32_t>(r, "llama.attention.head_count_kv"), 2u);
  EXPECT_FLOAT_EQ(scalar<float>(r, "llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_FLOAT_EQ(scalar<float>(r, "llama.rope.freq_base"), 10000.0f);
  EXPECT_EQ(scalar<std::uint32_t>(r, "llama.rope.dimension_count"), 8u);
  EXPECT_EQ(scalar<std::string>(r, "tokenizer.ggml.pre"), "llama-bpe");
  EXPECT_TRUE(scalar<bool>(r, "tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(scalar<std::string>(r, "tokenizer.chat_template").find("<|start_header_id|>") != std::string::npos, true);
}

TEST(GgufExport, TokenizerTablesMatchTokenizerJson) {
  Exported exported("llama", ExportDtype::f16);
  const GgufReader& r = *exported.reader;
  const auto json = nlohmann::json::parse(std::ifstream(fixture("llama") / "tokenizer.json"));
  const auto& tokens = r.at("tokenizer.ggml.tokens");
  const auto& types = r.at("tokenizer.ggml.token_type");
  ASSERT_EQ(tokens.elements.size(), 320u);
  ASSERT_EQ(types.element_type, GgufType::int32);
  for (const auto& [text, id] : json["model"]["vocab"].items()) {
    const auto index = id.get<std::size_t>();
    if (std::get<std::int32_t>(types.elements[index]) == 1) {
      EXPECT_EQ(std::get<std::string>(tokens.elements[index]), text);
    }
  }
  for (const auto& added : json["added_tokens"]) {
    const auto index = added["id"].get<std::size_t>();
    EXPECT_EQ(std::get<std::string>(tokens.elements[index]), added["content"].get<std::string>());
    EXPECT_EQ(std::get<std::int32_t>(types.elements[index]), 3);  // control
  }
  const auto& merges = r.at("tokenizer.ggml.merges").elements;
  ASSERT_EQ(merges.size(), json["model"]["merges"].size());
  const auto& first = json["model"]["merges"][0];
  const std::string first_text = first.is_string() ? first.get<std::string>() : first[0].get<std::string>() + " " + first[1].get<std::string>();
  EXPECT_EQ(std::get<std::string>(merges[0]), first_text);
  EXPECT_EQ(scalar<std::uint32_t>(r, "tokenizer.ggml.bos_token_id"), 1u);
  EXPECT_EQ(scalar<std::uint32_t>(r, "tokenizer.ggml.eos_token_id"), 0u);
  EXPECT_EQ(r.find("tokenizer.chat_template"), nullptr);
}

TEST(GgufExport, LlamaTensorsLayoutsAndValues) {
  Exported exported("llama", ExportDtype::f32);
  const GgufReader& r = *exported.reader;
  const ExportSource& source = *exported.source;
  EXPECT_EQ(r.tensors().size(), 2u * 9 + 4);  // blocks, embed, output_norm, output, rope_freqs
  EXPECT_EQ(r.data_offset() % 32, 0u);
  for (const auto& info : r.tensors()) {
    EXPECT_EQ(info.offset % 32, 0u) << info.name;
    if (info.ne.size() == 1) {
      EXPECT_EQ(info.type, GgmlType::f32) << info.name;
    }
  }
  EXPECT_EQ(r.tensor("token_embd.weight").ne, (std::vector<std::uint64_t>{32, 320}));
  EXPECT_EQ(r.tensor("blk.1.attn_k.weight").ne, (std::vector<std::uint64_t>{32, 16}));
  EXPECT_EQ(r.tensor("blk.0.ffn_down.weight").ne, (std::vector<std::uint64_t>{64, 32}));
  EXPECT_EQ(r.read_floats("blk.0.attn_v.weight"), source.read("blocks.0.attn.v.weight"));
  EXPECT_EQ(r.read_floats("output.weight"), source.read("lm_head.weight"));
  EXPECT_EQ(r.read_floats("blk.1.ffn_norm.weight"), source.read("blocks.1.mlp_norm.weight"));

  // q (4 heads) and k (2 heads) of head_dim 8: GGUF row h*8 + 2i + j is kiln row h*8 + 4j + i.
  const auto kiln_k = source.read("blocks.0.attn.k.weight");
  const auto gguf_k = r.read_floats("blk.0.attn_k.weight");
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 2; ++j) {
        for (int c = 0; c < 32; ++c) {
          ASSERT_EQ(gguf_k[static_cast<std::size_t>((h * 8 + 2 * i + j) * 32 + c)],
                    kiln_k[static_cast<std::size_t>((h * 8 + 4 * j + i) * 32 + c)]);
        }
      }
    }
  }
  EXPECT_EQ(interleave_rope_rows(source.read("blocks.1.attn.q.weight"), 4, 8, 32), r.read_floats("blk.1.attn_q.weight"));

  // llama3 scaling as llama.cpp's converter computes it: theta 10000, head_dim 8, original
  // context 32, factors 8 / 1 / 4 -> wavelengths 6.3 (kept), 63 (scaled by 8), 628, 6283.
  const auto freqs = r.read_floats("rope_freqs.weight");
  ASSERT_EQ(freqs.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const double wavelength = 2 * M_PI * std::pow(10000.0, 2.0 * i / 8);
    const double smooth = (32 / wavelength - 1.0) / (4.0 - 1.0);
    const double factor = wavelength < 8 ? 1.0 : wavelength > 32 ? 8.0 : 1.0 / ((1 - smooth) / 8 + smooth);
    EXPECT_NEAR(freqs[static_cast<std::size_t>(i)], factor, 1e-5 * factor) << i;
  }
}

TEST(GgufExport, Gpt2FusedQkvBiasesAndTiedHead) {
  Exported exported("gpt2", ExportDtype::f16);
  const GgufReader& r = *exported.reader;
  const ExportSource& source = *exported.source;
  EXPECT_EQ(scalar<std::string>(r, "general.architecture"), "gpt2");
  EXPECT_EQ(scalar<std::string>(r, "tokenizer.ggml.pre"), "gpt-2");
  EXPECT_EQ(scalar<std::uint32_t>(r, "general.file_type"), 1u);
  EXPECT_FLOAT_EQ(scalar<float>(r, "gpt2.attention.layer_norm_epsilon"), 1e-5f);
  EXPECT_EQ(r.find("gpt2.attention.head_count_kv"), nullptr);
  EXPECT_FALSE(scalar<bool>(r, "tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(r.find("output.weight"), nullptr);
  EXPECT_THROW(r.tensor("output.weight"), Error);  // tied: llama.cpp reuses token_embd
  EXPECT_EQ(r.tensor("position_embd.weight").type, GgmlType::f32);
  EXPECT_EQ(r.tensor("blk.0.attn_qkv.weight").type, GgmlType::f16);
  EXPECT_EQ(r.tensor("blk.0.attn_qkv.weight").ne, (std::vector<std::uint64_t>{32, 96}));
  std::vector<float> qkv_bias;
  for (const char* part : {"q", "k", "v"}) {
    const auto piece = source.read(std::string("blocks.1.attn.") + part + ".bias");
    qkv_bias.insert(qkv_bias.end(), piece.begin(), piece.end());
  }
  EXPECT_EQ(r.read_floats("blk.1.attn_qkv.bias"), qkv_bias);
  const auto qkv = r.read_floats("blk.1.attn_qkv.weight");
  const auto k = source.read("blocks.1.attn.k.weight");
  for (std::size_t i = 0; i < k.size(); ++i) ASSERT_NEAR(qkv[32 * 32 + i], k[i], 1e-3 * std::fabs(k[i]) + 1e-7);
}

TEST(GgufExport, Q8_0QuantisesMatricesWithinItsErrorBound) {
  Exported exported("llama", ExportDtype::q8_0);
  const GgufReader& r = *exported.reader;
  EXPECT_EQ(scalar<std::uint32_t>(r, "general.file_type"), 7u);
  EXPECT_EQ(r.tensor("blk.0.ffn_down.weight").type, GgmlType::q8_0);
  EXPECT_EQ(r.tensor("blk.0.attn_norm.weight").type, GgmlType::f32);
  const auto original = exported.source->read("blocks.0.mlp.down.weight");
  const auto quantised = r.read_floats("blk.0.ffn_down.weight");
  ASSERT_EQ(original.size(), quantised.size());
  for (std::size_t block = 0; block < original.size() / 32; ++block) {
    float amax = 0;
    for (std::size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(original[block * 32 + i]));
    for (std::size_t i = 0; i < 32; ++i) {
      ASSERT_LE(std::fabs(original[block * 32 + i] - quantised[block * 32 + i]), amax / 127 * 0.57f + 1e-6f);
    }
  }
}

TEST(GgufReader, RefusesCorruptFiles) {
  TempDir dir;
  GgufWriter writer;
  writer.add_metadata("general.architecture", GgufValue::of(std::string("llama")));
  writer.add_tensor("t", {4, 2}, GgmlType::f32);
  writer.write(dir / "ok.gguf", [](const GgufTensorInfo&) { return std::vector<std::byte>(32); });
  const GgufReader ok(dir / "ok.gguf");
  EXPECT_EQ(ok.tensor("t").ne, (std::vector<std::uint64_t>{4, 2}));

  std::ifstream in(dir / "ok.gguf", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto expect_refused = [&](const std::string& name, const std::string& content, const std::string& fragment) {
    std::ofstream(dir / name, std::ios::binary) << content;
    try {
      GgufReader reader(dir / name);
      ADD_FAILURE() << name << ": no error";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
    }
  };
  expect_refused("truncated.gguf", bytes.substr(0, bytes.size() - 16), "truncated");
  expect_refused("header.gguf", bytes.substr(0, 30), "truncated");
  std::string magic = bytes;
  magic[0] = 'X';
  expect_refused("magic.gguf", magic, "not a GGUF file");
  std::string count = bytes;
  count[16] = '\xff';  // metadata_kv_count low byte
  count[20] = '\xff';
  expect_refused("count.gguf", count, "claims");
}

// Tensor infos are checked against the file before any tensor is read: overlapping data, shapes
// whose byte count would overflow, alignments the format forbids, inputs that are not files.
TEST(GgufReader, RefusesInconsistentTensorInfos) {
  TempDir dir;
  GgufWriter writer;
  writer.add_metadata("general.architecture", GgufValue::of(std::string("llama")));
  writer.add_tensor("tensor_a", {8}, GgmlType::f32);
  writer.add_tensor("tensor_b", {8}, GgmlType::f32);
  writer.write(dir / "two.gguf", [](const GgufTensorInfo&) { return std::vector<std::byte>(32); });
  std::ifstream in(dir / "two.gguf", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Tensor info: name (u64 length + text), n_dims u32, ne u64 x n_dims, type u32, offset u64.
  const auto field_of = [&](const std::string& name, std::size_t after_name) {
    const auto at = bytes.find(name);
    EXPECT_NE(at, std::string::npos);
    return at + name.size() + after_name;
  };
  const auto patched = [&](std::size_t position, std::uint64_t value) {
    std::string copy = bytes;
    for (int i = 0; i < 8; ++i) copy[position + i] = static_cast<char>((value >> (8 * i)) & 0xff);
    return copy;
  };
  const auto expect_refused = [&](const std::string& content, const std::string& fragment) {
    std::ofstream(dir / "bad.gguf", std::ios::binary) << content;
    try {
      GgufReader reader(dir / "bad.gguf");
      ADD_FAILURE() << "no error; expected " << fragment;
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find("bad.gguf"), std::string::npos) << error.what();
    }
  };
  const std::size_t offset_b = field_of("tensor_b", 4 + 8 + 4);
  expect_refused(patched(offset_b, 0), "tensors 'tensor_a' and 'tensor_b' overlap");
  const std::size_t ne_a = field_of("tensor_a", 4);
  expect_refused(patched(ne_a, std::uint64_t{1} << 62), "more elements than the file's");
  expect_refused(patched(offset_b, std::uint64_t{1} << 63), "ends past the end of the file");

  GgufWriter odd;
  odd.add_metadata("general.alignment", GgufValue::of(std::uint32_t{12}));
  odd.add_tensor("t", {4}, GgmlType::f32);
  odd.write(dir / "odd.gguf", [](const GgufTensorInfo&) { return std::vector<std::byte>(16); });
  std::ifstream odd_in(dir / "odd.gguf", std::ios::binary);
  expect_refused(std::string((std::istreambuf_iterator<char>(odd_in)), std::istreambuf_iterator<char>()),
                 "general.alignment must be a uint32 multiple of 8");

  try {
    GgufReader reader(dir.path());
    ADD_FAILURE() << "read a directory";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("is a directory"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace kiln::interop
