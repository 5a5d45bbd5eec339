#pragma once
// Shared helpers for the model tests: tiny configs of both families, batches with a loss mask
// and packed documents, and tensor <-> vector conversions.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/ops.hpp"
#include "trainer/core/random.hpp"
#include "trainer/model/transformer.hpp"

namespace kiln::model::testing {

// vocab 37 padded to 64, d_model 16, 2 layers, 4 heads of 4.
inline ModelConfig tiny_gpt2() {
  ModelConfig c = gpt2_config();
  c.vocab_size = 37;
  c.vocab_pad_multiple = 32;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.d_ff = 32;
  c.max_seq_len = 16;
  return c.resolved();
}

// As tiny_gpt2, with 2 kv heads (GQA), SwiGLU width 24, untied head, llama3 RoPE scaling and
// a theta small enough that the positions of a short test sequence turn every frequency.
inline ModelConfig tiny_llama() {
  ModelConfig c = llama_config();
  c.vocab_size = 37;
  c.vocab_pad_multiple = 32;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.d_ff = 24;
  c.max_seq_len = 16;
  c.tie_embeddings = false;
  c.rope.theta = 50.0;
  c.rope.llama3_scaling = true;
  c.rope.factor = 4.0;
  c.rope.low_freq_factor = 1.0;
  c.rope.high_freq_factor = 2.0;
  c.rope.original_max_position_embeddings = 16;
  return c.resolved();
}

// A tiny Llama sized for the interop fixture tokenizer (tests/fixtures/interop/llama: 320
// tokens): d_model 32, 2 layers, GQA 4/2, SwiGLU 48, untied head, theta 10000.
inline ModelConfig fixture_llama(std::int64_t max_seq_len) {
  ModelConfig c = llama_config();
  c.vocab_size = 320;
  c.d_model = 32;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.d_ff = 48;
  c.max_seq_len = max_seq_len;
  c.tie_embeddings = false;
  c.rope.theta = 10000.0;
  return c.resolved();
}

inline OwnedTensor index_tensor(Shape shape, const std::vector<std::int32_t>& values) {
  OwnedTensor t(DType::I32, shape);
  EXPECT_EQ(static_cast<std::size_t>(t.numel()), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) t.data<std::int32_t>()[i] = values[i];
  return t;
}

inline std::vector<std::int32_t> random_ids(std::int64_t count, std::int64_t vocab,
                                            std::uint64_t seed) {
  Rng rng(seed);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(count));
  for (auto& id : ids) id = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(vocab)));
  return ids;
}

// Owns the tensors of a [B, T] batch. Without explicit positions, view() gives the ones
// model::document_positions builds from doc_ids (rewritten in place on every call, so views
// handed out earlier stay valid while the shape is unchanged).
struct OwnedBatch {
  OwnedTensor tokens, targets, loss_mask, doc_ids, positions;
  mutable std::vector<std::int32_t> built_positions;
  Batch view() const {
    Batch b;
    b.tokens = tokens;
    b.targets = targets;
    b.loss_mask = loss_mask;
    b.doc_ids = doc_ids;
    b.positions = positions;
    if (!b.positions.defined() && tokens.tensor().rank() == 2) {
      const auto built = model::document_positions(doc_ids, tokens.tensor().size(0), tokens.tensor().size(1));
      if (built_positions.size() == built.size())
        std::copy(built.begin(), built.end(), built_positions.begin());
      else
        built_positions = built;
      b.positions = Tensor::of(built_positions.data(), tokens.tensor().shape);
    }
    return b;
  }
};

// B = 2, T = 8: row 0 packs three documents (lengths 3, 4, 1), row 1 is one document; a few
// tokens are masked out of the loss.
inline OwnedBatch packed_batch(std::int64_t vocab, std::uint64_t seed, bool with_mask = true,
                               bool with_docs = true) {
  const Shape shape{2, 8};
  OwnedBatch b;
  b.tokens = index_tensor(shape, random_ids(16, vocab, seed));
  b.targets = index_tensor(shape, random_ids(16, vocab, seed + 1));
  if (with_mask) {
    b.loss_mask = OwnedTensor(DType::U8, shape);
    const std::vector<std::uint8_t> keep{1, 1, 0, 1, 1, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1};
    for (std::size_t i = 0; i < keep.size(); ++i) b.loss_mask.data<std::uint8_t>()[i] = keep[i];
  }
  if (with_docs) b.doc_ids = index_tensor(shape, {5, 5, 5, 6, 6, 6, 6, 7, 2, 2, 2, 2, 2, 2, 2, 2});
  return b;
}

inline std::vector<double> to_vector(const Tensor& tensor) {
  OwnedTensor dense(DType::F64, tensor.shape);
  ops::copy(dense, tensor);
  return {dense.data<double>(), dense.data<double>() + dense.numel()};
}

inline void from_vector(const Tensor& tensor, const std::vector<double>& values) {
  ASSERT_EQ(static_cast<std::size_t>(tensor.numel()), values.size());
  OwnedTensor dense(DType::F64, tensor.shape);
  std::copy(values.begin(), values.end(), dense.data<double>());
  ops::copy(tensor, dense);
}

// Every real (unpadded) parameter element drawn from N(mean, std): norm weights around 1 and
// non-zero biases, so that every path of the model carries signal in a gradient check.
inline void randomize_parameters(Transformer& model, std::uint64_t seed, double std_dev) {
  const ParameterStore& store = model.parameters();
  Rng rng(seed);
  for (std::size_t i = 0; i < store.size(); ++i) {
    const ParameterInfo& info = store.infos()[i];
    const Tensor real = store.value(i).narrow(0, 0, info.valid_rows);
    std::vector<double> values(static_cast<std::size_t>(real.numel()));
    const double mean = info.init == InitKind::ones ? 1.0 : 0.0;
    for (double& v : values) v = mean + std_dev * (2.0 * rng.uniform() - 1.0) * 1.7320508;
    from_vector(real, values);
  }
}

// The part of a whole-model (serial) tensor that a shard covers: its region {global_offset,
// local shape} with only the shard's real rows (the serial tensor may be padded differently).
inline Tensor serial_region(const Tensor& serial, const ParameterInfo& shard) {
  Tensor region = serial.narrow(0, shard.global_offset[0], shard.valid_rows);
  if (shard.shape.rank() == 2) region = region.narrow(1, shard.global_offset[1], shard.shape[1]);
  return region;
}

// The real rows of a shard as stored.
inline Tensor real_part(const Tensor& stored, const ParameterInfo& shard) {
  return stored.narrow(0, 0, shard.valid_rows);
}

}  // namespace kiln::model::testing
