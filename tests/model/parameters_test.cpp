// Parameter registry (names, shapes, split rules, fused views), initialisation from
// (name, seed) only, and the Hugging Face name map.
#include "trainer/model/parameters.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "tests/model/model_testing.hpp"
#include "trainer/model/init.hpp"
#include "trainer/model/name_map.hpp"

namespace kiln::model {
namespace {

std::vector<std::string> names(const ParameterStore& store) {
  std::vector<std::string> result;
  for (const ParameterInfo& info : store.infos()) result.push_back(info.name);
  return result;
}

TEST(ParameterStore, LlamaNamesShapesAndRules) {
  const ModelConfig c = testing::tiny_llama();
  const ParameterStore store(c, DType::F32);
  const std::vector<std::string> block0{
      "blocks.0.attn_norm.weight", "blocks.0.attn.q.weight",   "blocks.0.attn.k.weight",
      "blocks.0.attn.v.weight",    "blocks.0.attn.out.weight", "blocks.0.mlp_norm.weight",
      "blocks.0.mlp.gate.weight",  "blocks.0.mlp.up.weight",   "blocks.0.mlp.down.weight"};
  const std::vector<std::string> all = names(store);
  ASSERT_EQ(all.size(), 1 + 2 * block0.size() + 2);
  EXPECT_EQ(all.front(), "embed.weight");
  EXPECT_EQ(std::vector<std::string>(all.begin() + 1, all.begin() + 10), block0);
  EXPECT_EQ(all[all.size() - 2], "final_norm.weight");
  EXPECT_EQ(all.back(), "lm_head.weight");

  const ParameterInfo& embed = store.info("embed.weight");
  EXPECT_EQ(embed.shape, (Shape{64, 16}));
  EXPECT_EQ(embed.export_shape(), (Shape{37, 16}));
  EXPECT_EQ(embed.split, TpSplit::vocab);
  EXPECT_EQ(store.info("blocks.1.attn.k.weight").shape, (Shape{8, 16}));
  EXPECT_EQ(store.info("blocks.1.attn.k.weight").split, TpSplit::column);
  EXPECT_EQ(store.info("blocks.1.attn.out.weight").split, TpSplit::row);
  EXPECT_EQ(store.info("blocks.1.mlp.down.weight").shape, (Shape{16, 24}));
  EXPECT_EQ(store.info("blocks.1.mlp.down.weight").split, TpSplit::row);
  EXPECT_EQ(store.info("final_norm.weight").split, TpSplit::replicated);
  for (const ParameterInfo& info : store.infos())
    EXPECT_EQ(info.weight_decay, info.shape.rank() == 2) << info.name;
}

TEST(ParameterStore, Gpt2HasBiasesPositionsAndTiedHead) {
  const ParameterStore store(testing::tiny_gpt2(), DType::F32);
  EXPECT_TRUE(store.contains("pos_embed.weight"));
  EXPECT_FALSE(store.contains("lm_head.weight"));
  EXPECT_FALSE(store.contains("blocks.0.mlp.gate.weight"));
  for (const char* bias : {"blocks.1.attn_norm.bias", "blocks.1.attn.q.bias",
                           "blocks.1.attn.v.bias", "blocks.1.attn.out.bias", "blocks.1.mlp.up.bias",
                           "blocks.1.mlp.down.bias", "final_norm.bias"}) {
    ASSERT_TRUE(store.contains(bias)) << bias;
    EXPECT_FALSE(store.info(bias).weight_decay) << bias;
    EXPECT_EQ(store.info(bias).init, InitKind::zeros) << bias;
  }
  EXPECT_EQ(store.info("blocks.1.attn.q.bias").split, TpSplit::column);
  EXPECT_EQ(store.info("blocks.1.attn.out.bias").split, TpSplit::replicated);
  EXPECT_THROW(store.info("blocks.9.attn.q.weight"), Error);
}

// q, k and v are views into the one fused GEMM weight: writing through one is seen in the
// other, and the fused tensor is q rows, then k rows, then v rows.
TEST(ParameterStore, FusedQkvAndGateUpAreViewsOfLogicalTensors) {
  const ModelConfig c = testing::tiny_llama();
  const ParameterStore store(c, DType::F32);
  const Tensor fused = store.fused_value("blocks.1.attn.qkv.weight");
  EXPECT_EQ(fused.shape, (Shape{32, 16}));
  ops::fill(store.value("blocks.1.attn.k.weight"), 2.0);
  ops::fill(store.value("blocks.1.attn.v.weight"), 3.0);
  const std::vector<double> values = testing::to_vector(fused);
  EXPECT_EQ(values[16 * 16 - 1], 0.0);  // last element of q
  EXPECT_EQ(values[16 * 16], 2.0);      // first of k
  EXPECT_EQ(values[24 * 16], 3.0);      // first of v
  const Tensor gate_up_grad = store.fused_grad("blocks.0.mlp.gate_up.weight");
  EXPECT_EQ(gate_up_grad.shape, (Shape{48, 16}));
  EXPECT_EQ(gate_up_grad.ptr, store.grad("blocks.0.mlp.gate.weight").ptr);
  EXPECT_EQ(store.info("blocks.0.mlp.up.weight").fused_into, "blocks.0.mlp.gate_up.weight");
  EXPECT_EQ(store.numel(), store.infos().back().offset + store.infos().back().numel());
}

TEST(ParameterInit, DependsOnlyOnNameAndSeed) {
  // Different layouts: another layer count, other vocabulary padding, untied head.
  ModelConfig other = testing::tiny_llama();
  other.n_layers = 3;
  other.vocab_pad_multiple = 128;
  other.tie_embeddings = true;
  Transformer a(testing::tiny_llama()), b(other), c(testing::tiny_llama());
  a.init_weights(7);
  b.init_weights(7);
  c.init_weights(8);
  for (const char* name : {"embed.weight", "blocks.1.attn.q.weight", "blocks.0.mlp.up.weight"}) {
    const ParameterInfo& info = a.parameters().info(name);
    const auto real = [&](const Transformer& m) {
      return testing::to_vector(m.parameters().value(name).narrow(0, 0, info.valid_rows));
    };
    EXPECT_EQ(real(a), real(b)) << name;
    EXPECT_NE(real(a), real(c)) << name;
  }
  // Two distinct tensors of the same shape get different streams.
  EXPECT_NE(testing::to_vector(a.parameters().value("blocks.0.mlp.gate.weight")),
            testing::to_vector(a.parameters().value("blocks.0.mlp.up.weight")));
}

TEST(ParameterInit, RulesAndPadding) {
  ModelConfig config = testing::tiny_gpt2();
  config.d_model = 64;
  config.head_dim = 16;
  config.d_ff = 256;
  config.n_layers = 8;
  Transformer model(config);
  model.init_weights(3);
  const ParameterStore& store = model.parameters();
  const auto stddev = [](const std::vector<double>& v) {
    double sum = 0, sq = 0;
    for (double x : v) sum += x, sq += x * x;
    const double n = static_cast<double>(v.size());
    return std::sqrt(sq / n - (sum / n) * (sum / n));
  };
  const std::vector<double> up = testing::to_vector(store.value("blocks.0.mlp.up.weight"));
  EXPECT_NEAR(stddev(up), 0.02, 0.001);
  const std::vector<double> down = testing::to_vector(store.value("blocks.0.mlp.down.weight"));
  EXPECT_NEAR(stddev(down), 0.02 / std::sqrt(16.0), 0.0003);
  for (double x : testing::to_vector(store.value("blocks.3.mlp_norm.weight"))) EXPECT_EQ(x, 1.0);
  for (double x : testing::to_vector(store.value("blocks.3.attn.k.bias"))) EXPECT_EQ(x, 0.0);
  const Tensor embed = store.value("embed.weight");
  const std::vector<double> padding = testing::to_vector(embed.narrow(0, 37, 64 - 37));
  for (double x : padding) EXPECT_EQ(x, 0.0);
  const std::vector<double> last_real = testing::to_vector(embed.select(36));
  EXPECT_GT(stddev(last_real), 0.005);
}

TEST(ParameterInit, NormalStreamIsStandardNormal) {
  NormalStream normal(99);
  double sum = 0, sq = 0, fourth = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double x = normal.next();
    sum += x, sq += x * x, fourth += x * x * x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(sq / n, 1.0, 0.01);
  EXPECT_NEAR(fourth / n, 3.0, 0.06);  // a normal's kurtosis, not a uniform's 1.8
}

TEST(NameMap, CoversEveryParameterOnce) {
  for (const ModelConfig& config : {testing::tiny_gpt2(), testing::tiny_llama()}) {
    const ParameterStore store(config, DType::F32);
    std::set<std::string> mapped;
    for (const HfTensorMapping& m : hf_name_map(config)) {
      EXPECT_TRUE(mapped.insert(m.kiln_name).second) << m.kiln_name;
      EXPECT_TRUE(store.contains(m.kiln_name)) << m.kiln_name;
    }
    EXPECT_EQ(mapped.size(), store.size());
  }
  const std::vector<HfTensorMapping> gpt2 = hf_name_map(testing::tiny_gpt2());
  const auto find = [&](const std::string& kiln) {
    for (const HfTensorMapping& m : gpt2)
      if (m.kiln_name == kiln) return m;
    return HfTensorMapping{};
  };
  const HfTensorMapping k = find("blocks.1.attn.k.weight");
  EXPECT_EQ(k.hf_name, "transformer.h.1.attn.c_attn.weight");
  EXPECT_TRUE(k.transpose);
  EXPECT_EQ(k.slice_begin, 16);
  EXPECT_EQ(k.slice_length, 16);
  EXPECT_FALSE(find("blocks.1.attn_norm.weight").transpose);
  EXPECT_TRUE(find("blocks.0.mlp.down.weight").transpose);
  EXPECT_FALSE(find("blocks.0.mlp.down.bias").transpose);
}

}  // namespace
}  // namespace kiln::model
