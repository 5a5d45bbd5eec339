// Golden comparison against Hugging Face transformers (fixtures from
// scripts/fixtures/make_model_fixtures.py): logits, loss, every parameter gradient, and the
// parameters after 3 AdamW steps, for a tiny GPT-2 and a tiny Llama (GQA, untied head,
// llama3 RoPE scaling, explicit positions).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/model/model_testing.hpp"
#include "trainer/export/safetensors_reader.hpp"

namespace kiln::model {
namespace {

// The fixture, read with kiln's safetensors reader (trainer/export/): F32, I32 and U8 tensors
// copied into owned tensors, and the metadata's JSON strings.
struct SafetensorsFile {
  std::map<std::string, OwnedTensor> tensors;
  nlohmann::json metadata;

  const OwnedTensor& at(const std::string& name) const {
    const auto found = tensors.find(name);
    if (found == tensors.end()) throw std::runtime_error("fixture has no tensor " + name);
    return found->second;
  }
};

DType dtype_of(interop::SafetensorsDtype dtype) {
  switch (dtype) {
    case interop::SafetensorsDtype::F32: return DType::F32;
    case interop::SafetensorsDtype::I32: return DType::I32;
    case interop::SafetensorsDtype::U8: return DType::U8;
    default: throw std::runtime_error("unexpected fixture dtype");
  }
}

SafetensorsFile read_safetensors(const std::string& path) {
  const interop::SafetensorsReader reader(path);
  SafetensorsFile file;
  for (const auto& [key, value] : reader.metadata()) file.metadata[key] = value;
  for (const auto& info : reader.tensors()) {
    std::vector<std::int64_t> dims(info.shape.begin(), info.shape.end());
    OwnedTensor tensor(dtype_of(info.dtype), Shape(std::span<const std::int64_t>(dims)));
    const auto bytes = reader.read_bytes(info.name);
    EXPECT_EQ(bytes.size(), tensor.tensor().nbytes()) << info.name;
    std::memcpy(tensor.tensor().ptr, bytes.data(), bytes.size());
    file.tensors.emplace(info.name, std::move(tensor));
  }
  return file;
}

ModelConfig config_from_fixture(const nlohmann::json& j) {
  ModelConfig c = j["family"] == "gpt2" ? gpt2_config() : llama_config();
  c.vocab_size = j["vocab_size"];
  c.vocab_pad_multiple = 32;  // padded to 64: the comparison also proves padding is inert
  c.d_model = j["d_model"];
  c.n_layers = j["n_layers"];
  c.n_heads = j["n_heads"];
  c.n_kv_heads = j["n_kv_heads"];
  c.head_dim = j["head_dim"];
  c.d_ff = j["d_ff"];
  c.max_seq_len = j["max_seq_len"];
  c.norm_eps = j["norm_eps"];
  c.tie_embeddings = j["tie_embeddings"];
  if (j.contains("rope")) {
    const nlohmann::json& r = j["rope"];
    c.rope.theta = r["theta"];
    c.rope.llama3_scaling = true;
    c.rope.factor = r["factor"];
    c.rope.low_freq_factor = r["low_freq_factor"];
    c.rope.high_freq_factor = r["high_freq_factor"];
    c.rope.original_max_position_embeddings = r["original_max_position_embeddings"];
  }
  return c.resolved();
}

// |actual - expected| <= abs + rel * |expected| for every element.
void expect_close(const std::vector<double>& actual, const std::vector<double>& expected,
                  double rel, double abs, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int reported = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    if (std::fabs(actual[i] - expected[i]) <= abs + rel * std::fabs(expected[i])) continue;
    ADD_FAILURE() << what << "[" << i << "]: kiln " << actual[i] << " vs transformers "
                  << expected[i];
    if (++reported == 5) return;
  }
}

std::vector<double> real_rows(const Tensor& t, const ParameterInfo& info) {
  return testing::to_vector(t.narrow(0, 0, info.valid_rows));
}

class GoldenModel {
 public:
  explicit GoldenModel(const std::string& file)
      : fixture_(read_safetensors(std::string(KILN_FIXTURES_DIR) + "/model/" + file)),
        model_(config_from_fixture(
            nlohmann::json::parse(fixture_.metadata["config"].get<std::string>()))),
        adamw_(nlohmann::json::parse(fixture_.metadata["adamw"].get<std::string>())) {
    load_parameters();
    batch_.tokens = fixture_.at("tokens");
    batch_.targets = fixture_.at("targets");
    batch_.loss_mask = fixture_.at("loss_mask");
    if (fixture_.tensors.count("positions")) {
      batch_.positions = fixture_.at("positions");
    } else {
      positions_ = document_positions({}, batch_.tokens.size(0), batch_.tokens.size(1));
      batch_.positions = Tensor::of(positions_.data(), batch_.tokens.shape);
    }
  }

  // Every fixture parameter into kiln (its real rows; padding stays zero), and nothing left
  // over on either side.
  void load_parameters() {
    const ParameterStore& store = model_.parameters();
    std::size_t loaded = 0;
    for (const auto& [name, tensor] : fixture_.tensors) {
      if (name.rfind("param/", 0) != 0) continue;
      const ParameterInfo& info = store.info(name.substr(6));
      ASSERT_EQ(tensor.shape(), info.export_shape()) << name;
      ops::copy(store.value(info.name).narrow(0, 0, info.valid_rows), tensor);
      ++loaded;
    }
    ASSERT_EQ(loaded, store.size());
  }

  ops::LossSum forward_backward() {
    model_.zero_grads();
    const ops::LossSum loss = model_.forward(batch_);
    model_.backward(1.0 / static_cast<double>(loss.count));
    return loss;
  }

  void check_first_step() {
    const ops::LossSum loss = model_.forward(batch_);
    EXPECT_EQ(loss.count, 13);  // 16 tokens, 3 masked
    const std::vector<double> losses = testing::to_vector(fixture_.at("losses"));
    EXPECT_NEAR(loss.mean(), losses[0], 1e-5 * losses[0]);
    const std::int64_t V = model_.config().vocab_size;
    expect_close(testing::to_vector(model_.logits().narrow(2, 0, V)),
                 testing::to_vector(fixture_.at("logits")), 1e-4, 1e-5, "logits");
    model_.zero_grads();
    model_.backward(1.0 / static_cast<double>(loss.count));
    for (const ParameterInfo& info : model_.parameters().infos()) {
      const std::vector<double> grad = real_rows(model_.parameters().grad(info.name), info);
      expect_close(grad, testing::to_vector(fixture_.at("grad/" + info.name)), 1e-4, 1e-5,
                   "grad of " + info.name);
      if (!has_null_gradient(info.name)) continue;
      for (double g : grad) EXPECT_LT(std::fabs(g), 1e-6) << info.name;
    }
  }

  // The key bias adds q.b_k to every score of a query row, which softmax ignores: its exact
  // gradient is zero and both sides hold only rounding noise, which Adam's m / sqrt(v) turns
  // into +-lr steps of random sign. It is checked to be ~0 above and not compared after
  // AdamW.
  static bool has_null_gradient(const std::string& name) { return name.ends_with("attn.k.bias"); }

  // kiln's AdamW (per parameter, decay on matrices only) for the fixture's steps; the first
  // step reuses the gradient of check_first_step().
  void check_adamw_steps() {
    const ParameterStore& store = model_.parameters();
    std::vector<OwnedTensor> m, v;
    for (const ParameterInfo& info : store.infos()) {
      m.emplace_back(store.dtype(), info.shape);
      v.emplace_back(store.dtype(), info.shape);
    }
    const std::vector<double> losses = testing::to_vector(fixture_.at("losses"));
    const std::int64_t steps = adamw_["steps"];
    for (std::int64_t step = 1; step <= steps; ++step) {
      if (step > 1) {
        const double loss = forward_backward().mean();
        EXPECT_NEAR(loss, losses[static_cast<std::size_t>(step - 1)], 1e-4) << "step " << step;
      }
      const ops::AdamWStep hyper{adamw_["lr"],
                                 adamw_["beta1"],
                                 adamw_["beta2"],
                                 adamw_["eps"],
                                 adamw_["weight_decay"],
                                 step,
                                 1.0};
      for (std::size_t i = 0; i < store.size(); ++i)
        ops::adamw_step(store.value(i), store.grad(i), m[i], v[i], hyper,
                        store.infos()[i].weight_decay);
    }
    for (const ParameterInfo& info : store.infos()) {
      if (has_null_gradient(info.name)) continue;
      expect_close(real_rows(store.value(info.name), info),
                   testing::to_vector(fixture_.at("after/" + info.name)), 1e-4, 1e-5,
                   "after AdamW: " + info.name);
      const Tensor padding =
          store.value(info.name).narrow(0, info.valid_rows, info.shape[0] - info.valid_rows);
      for (double x : testing::to_vector(padding)) ASSERT_EQ(x, 0.0) << info.name;
    }
  }

 private:
  SafetensorsFile fixture_;
  Transformer model_;
  nlohmann::json adamw_;
  Batch batch_;
  std::vector<std::int32_t> positions_;  // when the fixture gives none
};

TEST(ModelGolden, Gpt2MatchesTransformers) {
  GoldenModel golden("gpt2_tiny.safetensors");
  golden.check_first_step();
  golden.check_adamw_steps();
}

TEST(ModelGolden, LlamaMatchesTransformers) {
  GoldenModel golden("llama_tiny.safetensors");
  golden.check_first_step();
  golden.check_adamw_steps();
}

}  // namespace
}  // namespace kiln::model
