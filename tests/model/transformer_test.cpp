// Transformer behaviour beyond gradients: vocabulary padding never leaks, packed documents
// are independent sequences, KV-cache decoding equals the full forward, bad batches fail.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "tests/model/model_testing.hpp"
#include "trainer/core/error.hpp"

namespace kiln::model {
namespace {

using testing::OwnedBatch;

std::vector<ModelConfig> both_families() { return {testing::tiny_gpt2(), testing::tiny_llama()}; }

// Copies every parameter's real rows from one model to another (other padding allowed).
void copy_real_parameters(const Transformer& from, Transformer& to) {
  for (const ParameterInfo& info : from.parameters().infos()) {
    ops::copy(to.parameters().value(info.name).narrow(0, 0, info.valid_rows),
              from.parameters().value(info.name).narrow(0, 0, info.valid_rows));
  }
}

// Logits of the real vocabulary, [B*T, vocab] flattened.
std::vector<double> real_logits(const Transformer& model) {
  const Tensor logits = model.logits();
  return testing::to_vector(logits.narrow(2, 0, model.config().vocab_size));
}

TEST(Transformer, VocabularyPaddingNeverChangesTheLoss) {
  for (ModelConfig config : both_families()) {
    const OwnedBatch batch = testing::packed_batch(config.vocab_size, 5);
    Transformer padded(config, DType::F64);
    testing::randomize_parameters(padded, 6, 0.3);
    // Garbage in the padded rows of embed (and lm_head): they must not matter.
    for (const char* name : {"embed.weight", "lm_head.weight"}) {
      if (!padded.parameters().contains(name)) continue;
      const ParameterInfo& info = padded.parameters().info(name);
      ops::fill(padded.parameters().value(name).narrow(0, info.valid_rows,
                                                       info.shape[0] - info.valid_rows),
                5.0);
    }
    config.vocab_pad_multiple = 1;  // no padding at all
    Transformer unpadded(config, DType::F64);
    ASSERT_EQ(unpadded.config().padded_vocab(), 37);
    copy_real_parameters(padded, unpadded);

    const ops::LossSum a = padded.forward(batch.view());
    const ops::LossSum b = unpadded.forward(batch.view());
    EXPECT_EQ(a.count, b.count);
    EXPECT_NEAR(a.sum, b.sum, 1e-12 * std::fabs(b.sum));
    const std::vector<double> la = real_logits(padded), lb = real_logits(unpadded);
    for (std::size_t i = 0; i < la.size(); ++i) ASSERT_NEAR(la[i], lb[i], 1e-12) << i;
  }
}

// A packed row [doc A | doc B] gives, on doc B's tokens, the logits of doc B alone: attention
// stops at the boundary and positions restart.
TEST(Transformer, PackedDocumentsAreIndependent) {
  for (const ModelConfig& config : both_families()) {
    Transformer model(config, DType::F64);
    testing::randomize_parameters(model, 8, 0.3);
    const std::vector<std::int32_t> ids = testing::random_ids(8, config.vocab_size, 9);
    OwnedBatch packed;
    packed.tokens = testing::index_tensor({1, 8}, ids);
    packed.doc_ids = testing::index_tensor({1, 8}, {0, 0, 0, 1, 1, 1, 1, 1});
    model.forward(packed.view());
    const std::vector<double> packed_logits = real_logits(model);

    OwnedBatch alone;
    alone.tokens = testing::index_tensor({1, 5}, {ids.begin() + 3, ids.end()});
    model.forward(alone.view());
    const std::vector<double> alone_logits = real_logits(model);
    const std::size_t V = static_cast<std::size_t>(config.vocab_size);
    for (std::size_t i = 0; i < alone_logits.size(); ++i)
      ASSERT_NEAR(packed_logits[3 * V + i], alone_logits[i], 1e-12) << family_name(config.family);

    // Without doc ids the same row mixes the documents.
    OwnedBatch mixed;
    mixed.tokens = testing::index_tensor({1, 8}, ids);
    model.forward(mixed.view());
    EXPECT_GT(std::fabs(real_logits(model)[3 * V] - alone_logits[0]), 1e-6);
  }
}

// Prefill 5 tokens, then decode 3 one at a time: every step's logits equal the full forward's
// at that position.
TEST(Transformer, KvCacheDecodeEqualsFullForward) {
  for (const ModelConfig& config : both_families()) {
    Transformer model(config, DType::F32);
    model.init_weights(12);
    testing::randomize_parameters(model, 13, 0.2);
    const std::int64_t B = 2, T = 8, V = config.vocab_size;
    const std::vector<std::int32_t> ids = testing::random_ids(B * T, V, 14);
    OwnedBatch full;
    full.tokens = testing::index_tensor({B, T}, ids);
    model.forward(full.view());
    const std::vector<double> expected = real_logits(model);  // [B, T, V]

    KvCache cache = model.make_kv_cache(B, 12);
    const auto check_step = [&](std::int64_t first, std::int64_t count) {
      std::vector<std::int32_t> chunk;
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t t = first; t < first + count; ++t) chunk.push_back(ids[b * T + t]);
      const OwnedTensor tokens = testing::index_tensor({B, count}, chunk);
      const Tensor logits = model.forward_decode(cache, tokens);
      ASSERT_EQ(logits.shape, (Shape{B, count, config.padded_vocab()}));
      const std::vector<double> got = testing::to_vector(logits.narrow(2, 0, V));
      for (std::int64_t b = 0; b < B; ++b)
        for (std::int64_t t = 0; t < count; ++t)
          for (std::int64_t v = 0; v < V; ++v)
            ASSERT_NEAR(got[(b * count + t) * V + v], expected[(b * T + first + t) * V + v], 2e-5)
                << family_name(config.family) << " b " << b << " t " << first + t;
    };
    check_step(0, 5);
    for (std::int64_t t = 5; t < T; ++t) check_step(t, 1);
    EXPECT_EQ(cache.length, T);
    cache.clear();
    check_step(0, 2);  // a cleared cache starts over
  }
}

TEST(Transformer, DecodeRefusesToOverflowTheCache) {
  Transformer model(testing::tiny_llama());
  KvCache cache = model.make_kv_cache(1, 4);
  const OwnedTensor tokens = testing::index_tensor({1, 3}, {1, 2, 3});
  model.forward_decode(cache, tokens);
  EXPECT_THROW(model.forward_decode(cache, tokens), Error);
  EXPECT_THROW(model.make_kv_cache(1, 17), Error);  // beyond max_seq_len
}

TEST(Transformer, FloatAgreesWithDouble) {
  for (const ModelConfig& config : both_families()) {
    const OwnedBatch batch = testing::packed_batch(config.vocab_size, 15);
    Transformer f32(config, DType::F32), f64(config, DType::F64);
    f32.init_weights(16);
    f64.init_weights(16);
    const ops::LossSum a = f32.forward(batch.view()), b = f64.forward(batch.view());
    EXPECT_NEAR(a.mean(), b.mean(), 1e-5);
    EXPECT_NEAR(a.mean(), std::log(37.0), 0.15);  // small init: close to uniform
    f32.backward(1.0 / static_cast<double>(a.count));
    f64.backward(1.0 / static_cast<double>(b.count));
    const std::vector<double> ga = testing::to_vector(f32.parameters().grads());
    const std::vector<double> gb = testing::to_vector(f64.parameters().grads());
    double scale = 0, worst = 0;
    for (std::size_t i = 0; i < ga.size(); ++i) {
      scale = std::max(scale, std::fabs(gb[i]));
      worst = std::max(worst, std::fabs(ga[i] - gb[i]));
    }
    EXPECT_GT(scale, 0.0);
    EXPECT_LT(worst / scale, 1e-4);
  }
}

std::string forward_error(Transformer& model, const Batch& batch) {
  try {
    model.forward(batch);
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

std::string inputs_error(const Transformer& model, const Batch& batch) {
  try {
    BatchInputs inputs(batch, BatchLimits::of(model.config()), "test batch");
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(Transformer, BadBatchesFailClearly) {
  Transformer model(testing::tiny_gpt2());
  OwnedBatch batch = testing::packed_batch(37, 1);
  batch.tokens.data<std::int32_t>()[3] = 40;  // a padding row, not a token
  // Ids are values: the shared batch builder checks them, once, before the model.
  EXPECT_NE(inputs_error(model, batch.view()).find("token id 40 is outside the vocabulary of 37"),
            std::string::npos);
  OwnedBatch wide;
  wide.tokens = testing::index_tensor({1, 17}, testing::random_ids(17, 37, 2));
  EXPECT_NE(forward_error(model, wide.view()).find("exceeds max_seq_len 16"), std::string::npos);
  OwnedBatch mismatched = testing::packed_batch(37, 3);
  mismatched.targets = testing::index_tensor({2, 4}, testing::random_ids(8, 37, 4));
  EXPECT_NE(forward_error(model, mismatched.view()).find("batch.targets"), std::string::npos);
  EXPECT_THROW(model.backward(1.0), Error);  // no successful forward with targets
  OwnedBatch no_targets;
  no_targets.tokens = testing::index_tensor({1, 4}, {1, 2, 3, 4});
  EXPECT_EQ(model.forward(no_targets.view()).count, 0);
  EXPECT_THROW(model.backward(1.0), Error);
}

// The model does not build positions (host work): a batch without them is refused, and the
// shared builder supplies them.
TEST(Transformer, BatchWithoutPositionsIsRefused) {
  Transformer model(testing::tiny_gpt2());
  model.init_weights(3);
  const OwnedBatch owned = testing::packed_batch(37, 1);
  Batch batch = owned.view();
  const ops::LossSum built = model.forward(batch);
  batch.positions = {};
  EXPECT_NE(forward_error(model, batch).find("batch.positions is missing"), std::string::npos)
      << forward_error(model, batch);
  const BatchInputs inputs(batch, BatchLimits::of(model.config()), "test batch");
  const ops::LossSum rebuilt = model.forward(inputs.batch());
  EXPECT_EQ(rebuilt.sum, built.sum);
  EXPECT_EQ(rebuilt.count, built.count);
}

}  // namespace
}  // namespace kiln::model
