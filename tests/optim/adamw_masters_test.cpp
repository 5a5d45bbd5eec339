// Mixed precision in the parameter store, the optimizer and checkpoints: bf16 values keep f32
// gradients; AdamW keeps fp32 masters of its owned range (its own buffer under bf16, the
// store's values under fp32), rounds them into the working copy after each step, and
// checkpoints carry the masters so either precision resumes the other's run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "kernels/ops.hpp"
#include "tests/model/model_testing.hpp"
#include "trainer/checkpoint/checkpoint_reader.hpp"
#include "trainer/checkpoint/checkpoint_writer.hpp"
#include "trainer/checkpoint/model_state.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/random.hpp"
#include "trainer/model/init.hpp"
#include "trainer/optim/adamw.hpp"

namespace kiln::optim {
namespace {

namespace fs = std::filesystem;
using model::ParameterStore;

std::vector<float> as_floats(Tensor t) {
  std::vector<float> values(static_cast<std::size_t>(t.numel()));
  ops::copy(Tensor::of(values.data(), {t.numel()}), t);
  return values;
}

std::vector<std::uint16_t> bf16_bits(Tensor t) {
  EXPECT_EQ(t.dtype, DType::BF16);
  std::vector<std::uint16_t> bits(static_cast<std::size_t>(t.numel()));
  std::memcpy(bits.data(), t.ptr, bits.size() * sizeof(std::uint16_t));
  return bits;
}

std::vector<std::uint16_t> rounded_bits(const std::vector<float>& values) {
  std::vector<std::uint16_t> bits;
  for (float value : values) bits.push_back(to_bfloat16(value).bits);
  return bits;
}

void fill_gradients(Tensor grads, std::uint64_t seed) {
  Rng rng(seed);
  auto* g = grads.data<float>();
  for (std::int64_t i = 0; i < grads.numel(); ++i) g[i] = static_cast<float>(rng.uniform() - 0.5);
}

AdamWConfig decaying() { return {0.9, 0.95, 1e-8, 0.1}; }

TEST(ParameterStorePrecision, Bf16ValuesKeepF32Gradients) {
  const ParameterStore store(model::testing::tiny_llama(), DType::BF16);
  EXPECT_EQ(store.dtype(), DType::BF16);
  EXPECT_EQ(store.grad_dtype(), DType::F32);
  EXPECT_EQ(store.values().dtype, DType::BF16);
  EXPECT_EQ(store.grads().dtype, DType::F32);
  EXPECT_EQ(store.value("blocks.0.attn.q.weight").dtype, DType::BF16);
  EXPECT_EQ(store.grad("blocks.0.attn.q.weight").dtype, DType::F32);
  EXPECT_EQ(store.fused_grad("blocks.1.mlp.gate_up.weight").dtype, DType::F32);
  // A gradient view addresses f32 elements: the last parameter's gradient ends the buffer.
  const auto& last = store.infos().back();
  const Tensor grad = store.grad(store.size() - 1);
  EXPECT_EQ(static_cast<std::byte*>(grad.ptr) + grad.nbytes(),
            static_cast<std::byte*>(store.grads().ptr) + store.grads().nbytes())
      << last.name;

  const ParameterStore fp32(model::testing::tiny_llama(), DType::F32);
  EXPECT_EQ(fp32.grad_dtype(), DType::F32);
  EXPECT_THROW(ParameterStore(model::testing::tiny_llama(), DType::F16), Error);
}

TEST(AdamWMasters, Fp32MastersAreTheStoreValues) {
  const ParameterStore store(model::testing::tiny_gpt2(), DType::F32);
  model::init_parameters(store, model::testing::tiny_gpt2(), 3);
  AdamW optimizer(store, decaying(), 10, store.numel() - 5);
  EXPECT_FALSE(optimizer.separate_masters());
  EXPECT_EQ(optimizer.masters(store).ptr, store.values().narrow(0, 10, store.numel() - 15).ptr);

  // Stepping is today's update of the values in place, bit for bit.
  const std::vector<float> before = as_floats(store.values());
  OwnedTensor grads(DType::F32, {store.numel() - 15});
  fill_gradients(grads, 5);
  optimizer.step(store, grads, 1e-2, 0.5);
  OwnedTensor expected(DType::F32, {store.numel()});
  ops::copy(expected, Tensor::of(const_cast<float*>(before.data()), {store.numel()}));
  OwnedTensor m(DType::F32, {store.numel() - 15}), v(DType::F32, {store.numel() - 15});
  std::vector<ops::AdamWSegment> pieces;
  for (const auto& segment : optimizer.segments()) {
    const auto& info = store.infos()[segment.parameter];
    pieces.push_back({info.offset + segment.begin, segment.offset, segment.end - segment.begin, info.weight_decay});
  }
  ops::AdamWStep update;
  update.lr = 1e-2;
  update.beta1 = 0.9;
  update.beta2 = 0.95;
  update.eps = 1e-8;
  update.weight_decay = 0.1;
  update.step = 1;
  update.grad_scale = 0.5;
  ops::adamw_step_segments(expected, grads, m, v, pieces, update);
  EXPECT_EQ(as_floats(store.values()), as_floats(expected));
}

// The bf16 optimizer's masters follow exactly the trajectory of an fp32 optimizer fed the same
// gradients from the same (bf16-representable) start; the working copy is their rounding.
TEST(AdamWMasters, Bf16UpdatesF32MastersAndRoundsTheWorkingCopy) {
  const auto config = model::testing::tiny_llama();
  const ParameterStore bf16(config, DType::BF16);
  const ParameterStore fp32(config, DType::F32);
  model::init_parameters(bf16, config, 11);
  ops::copy(fp32.values(), bf16.values());
  const std::int64_t begin = 7, end = bf16.numel() - 9;  // a ZeRO-like range cutting parameters
  AdamW mixed(bf16, decaying(), begin, end);
  AdamW reference(fp32, decaying(), begin, end);
  ASSERT_TRUE(mixed.separate_masters());
  EXPECT_EQ(mixed.masters(bf16).dtype, DType::F32);
  mixed.masters_from_working_copy(bf16);
  EXPECT_EQ(as_floats(mixed.masters(bf16)), as_floats(fp32.values().narrow(0, begin, end - begin)));

  const std::vector<std::uint16_t> outside_before = bf16_bits(bf16.values().narrow(0, 0, begin));
  OwnedTensor grads(DType::F32, {end - begin});
  for (std::uint64_t step = 1; step <= 3; ++step) {
    fill_gradients(grads, step);
    mixed.step(bf16, grads, 3e-2, 1.0);
    reference.step(fp32, grads, 3e-2, 1.0);
  }
  const std::vector<float> masters = as_floats(mixed.masters(bf16));
  EXPECT_EQ(masters, as_floats(fp32.values().narrow(0, begin, end - begin)));
  EXPECT_EQ(bf16_bits(bf16.values().narrow(0, begin, end - begin)), rounded_bits(masters));
  EXPECT_EQ(bf16_bits(bf16.values().narrow(0, 0, begin)), outside_before);  // not this rank's range
  // The masters hold what bf16 cannot: some updated weight is not a bf16 value.
  const std::vector<float> working = as_floats(bf16.values().narrow(0, begin, end - begin));
  EXPECT_NE(masters, working);
}

class MastersCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::temp_directory_path() / fmt::format("kiln_masters_{}_{}", ::getpid(), test->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // One rank's checkpoint of what `write` adds.
  template <class Write>
  fs::path save(std::int64_t step, Write write) {
    checkpoint::CheckpointWriter writer(root_ / "checkpoints", step);
    write(writer);
    checkpoint::CheckpointMeta meta;
    meta.recipe = {{"model", {{"d_model", 16}}}};
    meta.loader = {{"epoch", 0}};
    meta.rng = {{"seed", 1}};
    meta.schedule = {{"kind", "cosine"}};
    writer.set_meta(meta);
    return writer.commit();
  }

  fs::path root_;
};

// As in training, the vocabulary's padding rows get no gradient (checkpoints do not keep them).
void zero_padding_gradients(const ParameterStore& store, const AdamW& optimizer, Tensor grads) {
  for (const auto& segment : optimizer.segments()) {
    const auto& info = store.infos()[segment.parameter];
    const std::int64_t columns = info.shape.rank() == 1 ? 1 : info.shape[1];
    for (std::int64_t i = std::max(segment.begin, info.valid_rows * columns); i < segment.end; ++i)
      grads.data<float>()[segment.offset + i - segment.begin] = 0.0f;
  }
}

// A trained bf16 store and optimizer: masters that are not bf16 values.
void train_a_little(const ParameterStore& store, AdamW& optimizer) {
  OwnedTensor grads(DType::F32, {optimizer.end() - optimizer.begin()});
  for (std::uint64_t step = 1; step <= 2; ++step) {
    fill_gradients(grads, 40 + step);
    zero_padding_gradients(store, optimizer, grads);
    optimizer.step(store, grads, 3e-2, 1.0);
  }
}

TEST_F(MastersCheckpoint, Bf16SavesMastersThatFp32AndBf16LoadExactly) {
  const auto config = model::testing::tiny_gpt2();
  const ParameterStore bf16(config, DType::BF16);
  model::init_parameters(bf16, config, 5);
  AdamW optimizer(bf16, decaying());
  optimizer.masters_from_working_copy(bf16);
  train_a_little(bf16, optimizer);
  const std::vector<float> masters = as_floats(optimizer.masters(bf16));
  // A bf16 working copy is no checkpoint source.
  {
    checkpoint::CheckpointWriter writer(root_ / "refused", 1);
    EXPECT_THROW(checkpoint::write_parameters(writer, bf16), Error);
  }
  const fs::path dir = save(2, [&](checkpoint::CheckpointWriter& writer) {
    checkpoint::write_masters(writer, bf16, optimizer);
    checkpoint::write_optimizer(writer, bf16, optimizer);
  });
  const checkpoint::CheckpointReader reader(dir);

  // bf16 -> fp32: the values are the masters, bit for bit.
  const ParameterStore fp32(config, DType::F32);
  checkpoint::read_parameters(reader, fp32);
  EXPECT_EQ(as_floats(fp32.values()), masters);

  // bf16 -> bf16: masters restored exactly, the working copy is their rounding.
  const ParameterStore resumed(config, DType::BF16);
  AdamW resumed_optimizer(resumed, decaying());
  checkpoint::read_parameters(reader, resumed);
  checkpoint::read_masters(reader, resumed, resumed_optimizer);
  EXPECT_EQ(as_floats(resumed_optimizer.masters(resumed)), masters);
  EXPECT_EQ(bf16_bits(resumed.values()), bf16_bits(bf16.values()));

  // fp32 -> bf16: an fp32 checkpoint's values become the masters exactly.
  const fs::path fp32_dir = save(3, [&](checkpoint::CheckpointWriter& writer) { checkpoint::write_parameters(writer, fp32); });
  const ParameterStore from_fp32(config, DType::BF16);
  AdamW from_fp32_optimizer(from_fp32, decaying());
  const checkpoint::CheckpointReader fp32_reader(fp32_dir);
  checkpoint::read_parameters(fp32_reader, from_fp32);
  checkpoint::read_masters(fp32_reader, from_fp32, from_fp32_optimizer);
  EXPECT_EQ(as_floats(from_fp32_optimizer.masters(from_fp32)), masters);
  EXPECT_EQ(bf16_bits(from_fp32.values()), rounded_bits(masters));
}

// Under ZeRO each rank writes its master shard; together they are the whole model.
TEST_F(MastersCheckpoint, MasterShardsTogetherAreTheWholeModel) {
  const auto config = model::testing::tiny_llama();
  const ParameterStore bf16(config, DType::BF16);
  model::init_parameters(bf16, config, 9);
  const std::int64_t half = bf16.numel() / 2 + 3;
  AdamW first(bf16, decaying(), 0, half), second(bf16, decaying(), half, bf16.numel());
  first.masters_from_working_copy(bf16);
  second.masters_from_working_copy(bf16);
  train_a_little(bf16, first);
  train_a_little(bf16, second);
  std::vector<float> whole = as_floats(first.masters(bf16));
  const std::vector<float> rest = as_floats(second.masters(bf16));
  whole.insert(whole.end(), rest.begin(), rest.end());
  const fs::path dir = save(4, [&](checkpoint::CheckpointWriter& writer) {
    checkpoint::write_masters(writer, bf16, first);
    checkpoint::write_masters(writer, bf16, second);
  });
  const ParameterStore fp32(config, DType::F32);
  checkpoint::read_parameters(checkpoint::CheckpointReader(dir), fp32);
  EXPECT_EQ(as_floats(fp32.values()), whole);
}

}  // namespace
}  // namespace kiln::optim
