// config.json <-> recipe model: both families, old and new key spellings, refused variants,
// and missing keys named with the file.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/dataset/test_datasets.hpp"
#include "trainer/core/error.hpp"
#include "trainer/export/hf_config.hpp"

namespace kiln::interop {
namespace {

using nlohmann::json;

json llama_json() {
  return json::parse(R"({"model_type": "llama", "vocab_size": 320, "hidden_size": 64, "intermediate_size": 96,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256,
    "rms_norm_eps": 1e-6, "rope_theta": 500000.0, "tie_word_embeddings": false,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 64}})");
}

std::string error_of(const json& config) {
  try {
    model_config_from_hf(config, "dir/config.json");
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(HfConfig, Gpt2WithDefaultsAndOldSpelling) {
  const auto m = model_config_from_hf(
      json::parse(R"({"model_type": "gpt2", "vocab_size": 50257, "n_embd": 768, "n_layer": 12, "n_head": 12,
                      "n_ctx": 1024, "n_inner": null})"),
      "config.json");
  EXPECT_EQ(m.family, config::ModelFamily::gpt2);
  EXPECT_EQ(m.d_ff, 3072);  // n_inner null = 4 n_embd
  EXPECT_EQ(m.max_seq_len, 1024);
  EXPECT_TRUE(m.tie_embeddings);
  EXPECT_DOUBLE_EQ(m.norm_eps, 1e-5);
}

TEST(HfConfig, LlamaWithLlama3Scaling) {
  const auto m = model_config_from_hf(llama_json(), "config.json");
  EXPECT_EQ(m.family, config::ModelFamily::llama);
  EXPECT_EQ(m.n_kv_heads, 2);
  EXPECT_EQ(m.d_ff, 96);
  EXPECT_FALSE(m.tie_embeddings);
  EXPECT_DOUBLE_EQ(m.rope_theta, 500000.0);
  EXPECT_EQ(m.rope_scaling.type, config::RopeScalingType::llama3);
  EXPECT_EQ(m.rope_scaling.original_max_position_embeddings, 64);
}

TEST(HfConfig, LlamaOldAndNewSpellingsAgree) {
  const auto reference = model_config_from_hf(llama_json(), "config.json");
  json old_style = llama_json();
  old_style["rope_scaling"].erase("rope_type");
  old_style["rope_scaling"]["type"] = "llama3";
  EXPECT_EQ(model_config_from_hf(old_style, "config.json"), reference);
  json new_style = llama_json();
  new_style["rope_parameters"] = new_style["rope_scaling"];
  new_style["rope_parameters"]["rope_theta"] = 500000.0;
  new_style.erase("rope_scaling");
  new_style.erase("rope_theta");
  EXPECT_EQ(model_config_from_hf(new_style, "config.json"), reference);
  json no_scaling = llama_json();
  no_scaling["rope_scaling"] = nullptr;
  EXPECT_EQ(model_config_from_hf(no_scaling, "config.json").rope_scaling.type, config::RopeScalingType::none);
}

TEST(HfConfig, MissingKeysAreNamedWithTheFile) {
  json config = llama_json();
  config.erase("hidden_size");
  EXPECT_NE(error_of(config).find("dir/config.json: missing key \"hidden_size\""), std::string::npos);
  config = llama_json();
  config["rope_scaling"].erase("factor");
  EXPECT_NE(error_of(config).find("rope_scaling.factor"), std::string::npos);
  EXPECT_NE(error_of(json::object()).find("model_type"), std::string::npos);
  EXPECT_NE(error_of(json{{"model_type", "bert"}}).find("not supported"), std::string::npos);
}

TEST(HfConfig, RefusesWhatKilnWouldComputeDifferently) {
  json config = llama_json();
  config["attention_bias"] = true;
  EXPECT_NE(error_of(config).find("attention_bias"), std::string::npos);
  config = llama_json();
  config["rope_scaling"]["rope_type"] = "yarn";
  EXPECT_NE(error_of(config).find("yarn"), std::string::npos);
  config = llama_json();
  config["head_dim"] = 32;
  EXPECT_NE(error_of(config).find("head_dim"), std::string::npos);
  config = llama_json();
  config["vocab_size"] = "many";
  EXPECT_NE(error_of(config).find("vocab_size"), std::string::npos);
  const json gelu = json::parse(R"({"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_layer": 1, "n_head": 2,
                                    "n_positions": 8, "activation_function": "relu"})");
  EXPECT_NE(error_of(gelu).find("activation_function"), std::string::npos);
}

TEST(HfConfig, WrittenConfigReadsBackAsTheSameModel) {
  auto model = model_config_from_hf(llama_json(), "config.json");
  const auto written = hf_config_from_model(model, {1, 0}, "float32");
  EXPECT_EQ(written["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(written["bos_token_id"], 1);
  EXPECT_EQ(model_config_from_hf(json::parse(written.dump()), "written"), model);
  const auto gpt2 = model_config_from_hf(
      json::parse(R"({"model_type": "gpt2", "vocab_size": 300, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 64})"),
      "config.json");
  EXPECT_EQ(model_config_from_hf(json::parse(hf_config_from_model(gpt2, {}, "float16").dump()), "written"), gpt2);
}

TEST(HfConfig, SizesOutOfRangeOrOfTheWrongTypeAreNamed) {
  json config = llama_json();
  config["num_hidden_layers"] = 100000000;
  EXPECT_NE(error_of(config).find("key \"num_hidden_layers\" = 100000000 is out of range: kiln accepts at most 10000"),
            std::string::npos)
      << error_of(config);
  config = llama_json();
  config["vocab_size"] = 18446744073709551615ULL;  // would wrap to -1 read as signed
  EXPECT_NE(error_of(config).find("\"vocab_size\" = 18446744073709551615 is out of range"), std::string::npos)
      << error_of(config);
  config = llama_json();
  config["hidden_size"] = 64.0;
  EXPECT_NE(error_of(config).find("\"hidden_size\" must be a positive integer, found 64.0"), std::string::npos)
      << error_of(config);
  config = llama_json();
  config["rms_norm_eps"] = "small";
  EXPECT_NE(error_of(config).find("\"rms_norm_eps\" must be a number"), std::string::npos) << error_of(config);
  config = llama_json();
  config["rope_scaling"]["original_max_position_embeddings"] = -3;
  EXPECT_NE(error_of(config).find("\"rope_scaling.original_max_position_embeddings\" must be a positive integer"),
            std::string::npos)
      << error_of(config);
}

TEST(HfConfig, NumbersJsonCannotHoldAreANamedError) {
  kiln::testing::TempDir dir;
  std::ofstream(dir / "config.json") << R"({"model_type": "llama", "rope_theta": 1e999})";
  try {
    read_json_file(dir / "config.json");
    ADD_FAILURE() << "1e999 accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("config.json: not valid JSON"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("1e999"), std::string::npos) << error.what();
  }
  EXPECT_THROW(read_json_file(dir.path()), Error);  // a directory
}

}  // namespace
}  // namespace kiln::interop
