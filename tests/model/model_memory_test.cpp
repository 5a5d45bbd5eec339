// The memory ledger sees exactly the arenas a tiny model's shapes call for: parameters,
// gradients, AdamW moments, activations for (B, T), pipeline links and the KV cache. The
// expected bytes are worked out here from the model's dimensions, not taken from the code
// that allocates them.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/memory/memory_ledger.hpp"
#include "parallel/pipeline_links.hpp"
#include "tests/model/model_testing.hpp"
#include "trainer/optim/adamw.hpp"

namespace kiln::model {
namespace {

using memory::MemoryCategory;
using memory::MemoryLedger;

constexpr std::uint64_t kF32 = 4;

std::uint64_t aligned(std::uint64_t bytes) { return (bytes + 63) / 64 * 64; }

// Elements of every parameter of the whole model (one process).
std::uint64_t parameter_elements(const ModelConfig& c) {
  const std::int64_t C = c.d_model, V = c.padded_vocab(), F = c.d_ff;
  const bool gpt2 = c.family == Family::gpt2;
  const std::int64_t qkv = (c.n_heads + 2 * c.n_kv_heads) * c.head_dim, q = c.n_heads * c.head_dim;
  const std::int64_t norm = gpt2 ? 2 * C : C;
  std::int64_t block = 2 * norm + qkv * C + C * q + (gpt2 ? F : 2 * F) * C + C * F;
  if (gpt2) block += qkv + C + F + C;  // biases
  std::int64_t total = V * C + c.n_layers * block + norm;
  if (gpt2) total += c.max_seq_len * C;
  if (!c.tie_embeddings) total += V * C;
  return static_cast<std::uint64_t>(total);
}

// One training slot's arena for [B, T]: every tensor rounded up to 64 bytes.
std::uint64_t training_activation_bytes(const ModelConfig& c, std::int64_t B, std::int64_t T) {
  const std::int64_t N = B * T, C = c.d_model, V = c.padded_vocab(), F = c.d_ff;
  const bool gpt2 = c.family == Family::gpt2;
  const std::int64_t q = c.n_heads * c.head_dim, qkv = q + 2 * c.n_kv_heads * c.head_dim;
  const std::int64_t mlp_in = gpt2 ? F : 2 * F;
  std::vector<std::int64_t> elements{N, N, N * C};  // positions, zero_ids (i32), embedded
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    for (const std::int64_t e : {N * C, N, N * qkv, N * q, N * c.n_heads, N * C, N * C, N, N * mlp_in, N * F, N * C})
      elements.push_back(e);
    if (gpt2) elements.insert(elements.end(), {N, N});  // LayerNorm means
  }
  for (const std::int64_t e : {N * C, N, N * V, N, N, N, 2 * N}) elements.push_back(e);
  if (gpt2) elements.push_back(N);
  for (const std::int64_t e : {N * C, N * C, N * qkv, N * q, N * mlp_in, N * F}) elements.push_back(e);
  std::uint64_t bytes = 0;
  for (const std::int64_t e : elements) bytes += aligned(static_cast<std::uint64_t>(e) * kF32);
  return bytes;
}

std::uint64_t current(MemoryCategory category) {
  return MemoryLedger::process().usage(category, Device::Cpu).current;
}

struct Counts {
  std::uint64_t parameters = current(MemoryCategory::parameters);
  std::uint64_t gradients = current(MemoryCategory::gradients);
  std::uint64_t optimizer = current(MemoryCategory::optimizer_state);
  std::uint64_t activations = current(MemoryCategory::activations);
  std::uint64_t kv_cache = current(MemoryCategory::kv_cache);
};

class ModelMemory : public ::testing::TestWithParam<bool> {
 protected:
  ModelConfig config() const { return GetParam() ? testing::tiny_llama() : testing::tiny_gpt2(); }
};

TEST_P(ModelMemory, LedgerHoldsWhatTheShapesNeed) {
  const ModelConfig c = config();
  const Counts before;
  Transformer model(c);
  const std::uint64_t numel = parameter_elements(c);
  ASSERT_EQ(static_cast<std::uint64_t>(model.parameters().numel()), numel);
  EXPECT_EQ(current(MemoryCategory::parameters) - before.parameters, aligned(numel * kF32));
  EXPECT_EQ(current(MemoryCategory::gradients) - before.gradients, aligned(numel * kF32));

  const optim::AdamW adamw(model.parameters(), {});
  EXPECT_EQ(current(MemoryCategory::optimizer_state) - before.optimizer, 2 * aligned(numel * kF32));
  const optim::AdamW zero_shard(model.parameters(), {}, 10, 110);  // a ZeRO range of 100
  EXPECT_EQ(current(MemoryCategory::optimizer_state) - before.optimizer, 2 * aligned(numel * kF32) + 2 * 448);

  model.init_weights(3);
  const auto batch = testing::packed_batch(c.vocab_size, 5);  // B = 2, T = 8
  model.forward(batch.view());
  model.backward(1.0);
  const std::uint64_t slot = training_activation_bytes(c, 2, 8);
  EXPECT_EQ(current(MemoryCategory::activations) - before.activations, slot);
  EXPECT_EQ(model.activation_bytes(), slot);
  model.forward(batch.view());  // same (B, T): no new arena
  EXPECT_EQ(current(MemoryCategory::activations) - before.activations, slot);

  model.set_pipeline_slots(2);
  model.reserve_activations(2, 8);
  EXPECT_EQ(current(MemoryCategory::activations) - before.activations, 2 * slot);
  model.reserve_activations(4, 8);  // both slots re-planned for the new micro-batch
  EXPECT_EQ(current(MemoryCategory::activations) - before.activations, 2 * training_activation_bytes(c, 4, 8));

  {
    const KvCache cache = model.make_kv_cache(2, 12);
    const std::uint64_t per_tensor = aligned(static_cast<std::uint64_t>(2 * 12 * c.n_kv_heads * c.head_dim) * kF32);
    EXPECT_EQ(current(MemoryCategory::kv_cache) - before.kv_cache, 2 * c.n_layers * per_tensor);
    EXPECT_EQ(cache.keys.front().device, Device::Cpu);
  }
  EXPECT_EQ(current(MemoryCategory::kv_cache), before.kv_cache);
}

INSTANTIATE_TEST_SUITE_P(BothFamilies, ModelMemory, ::testing::Values(false, true),
                         [](const auto& case_info) { return case_info.param ? "llama" : "gpt2"; });

TEST(PipelineLinksMemory, EachStageHoldsOnlyTheLinksItReceivesInto) {
  const Shape activation{2, 8, 16};
  const std::uint64_t link = aligned(2 * 8 * 16 * kF32);
  const std::uint64_t before = current(MemoryCategory::pipeline);
  parallel::PipelineLinks first, middle, last;
  first.plan(3, 0, activation, DType::F32);
  middle.plan(3, 1, activation, DType::F32);
  last.plan(3, 2, activation, DType::F32);
  EXPECT_FALSE(first.input().defined());
  EXPECT_TRUE(first.grad_output().defined());
  EXPECT_TRUE(middle.input().defined() && middle.grad_output().defined());
  EXPECT_FALSE(last.grad_output().defined());
  EXPECT_EQ(last.input().shape, activation);
  EXPECT_EQ(first.bytes() + middle.bytes() + last.bytes(), 4 * link);
  EXPECT_EQ(current(MemoryCategory::pipeline) - before, 4 * link);
  const void* kept = middle.input().ptr;
  middle.plan(3, 1, activation, DType::F32);  // every step plans again: same buffers
  EXPECT_EQ(middle.input().ptr, kept);
}

}  // namespace
}  // namespace kiln::model
