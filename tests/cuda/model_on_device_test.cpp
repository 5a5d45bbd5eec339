// The model's state on the CUDA device: a Transformer built with the CUDA allocator keeps its
// parameters, gradients, activations and optimizer state in device memory, initialises them
// to the same bits as on the host, and AdamW with the global gradient norm and finite check
// updates them as on the host, and a forward and backward on the device match the host's.
// Emulated device here; the GPU in kiln_cuda_tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/cuda/backend.hpp"
#include "kernels/cuda/backend_registry.hpp"
#include "kernels/ops.hpp"
#include "parallel/communicator.hpp"
#include "parallel/process_grid.hpp"
#include "tests/cuda/kernel_reference.hpp"
#include "tests/cuda/test_device.hpp"
#include "tests/model/model_testing.hpp"
#include "trainer/model/device_batch.hpp"
#include "trainer/optim/adamw.hpp"
#include "trainer/train/gradient_norm.hpp"

namespace kiln::cuda_test {
namespace {

// A flat tensor's values as f32 on the host, wherever it lives.
std::vector<float> host_f32(const Tensor& flat) {
  OwnedTensor host(DType::F32, flat.shape);
  ops::copy(host, flat);
  return {host.data<float>(), host.data<float>() + host.numel()};
}

struct Case {
  const char* name;
  model::ModelConfig config;
  DType dtype;
};

std::vector<Case> cases() {
  return {{"gpt2_f32", model::testing::tiny_gpt2(), DType::F32},
          {"llama_f32", model::testing::tiny_llama(), DType::F32},
          {"llama_bf16", model::testing::tiny_llama(), DType::BF16}};
}

TEST(ModelOnDevice, ParametersLiveOnTheDeviceAndInitialiseToTheHostBits) {
  select_the_test_device();
  for (const Case& c : cases()) {
    model::Transformer on_host(c.config, c.dtype);
    model::Transformer on_device(c.config, c.dtype, {}, cuda_backend::cuda_allocator());
    on_host.init_weights(42);
    on_device.init_weights(42);
    const Tensor values = on_device.parameters().values();
    EXPECT_EQ(values.device, Device::Cuda) << c.name;
    EXPECT_EQ(on_device.parameters().grads().device, Device::Cuda) << c.name;
#if KILN_CUDA_EMULATED
    EXPECT_TRUE(kiln::emu::is_device_pointer(values.ptr)) << c.name;
#endif
    EXPECT_EQ(host_f32(values), host_f32(on_host.parameters().values())) << c.name;
  }
}

TEST(ModelOnDevice, AdamWStepWithTheGlobalNormMatchesTheHost) {
  select_the_test_device();
  for (const Case& c : cases()) {
    model::Transformer on_host(c.config, c.dtype);
    model::Transformer on_device(c.config, c.dtype, {}, cuda_backend::cuda_allocator());
    on_host.init_weights(7);
    on_device.init_weights(7);
    const std::int64_t n = on_host.parameters().numel();
    const std::vector<float> grads = random_values(static_cast<std::size_t>(n), 8, -0.5f, 0.5f);
    ops::copy(on_host.parameters().grads(), Tensor::of(grads.data(), {n}));
    ops::copy(on_device.parameters().grads(), Tensor::of(grads.data(), {n}));

    optim::AdamW host_adam(on_host.parameters(), {}), device_adam(on_device.parameters(), {});
    host_adam.masters_from_working_copy(on_host.parameters());
    device_adam.masters_from_working_copy(on_device.parameters());
    auto world = parallel::world_communicator();
    parallel::ProcessGrid grid(*world, 1, 1, 1);
    const double host_norm = train::global_gradient_norm(on_host.parameters(), host_adam,
                                                         on_host.parameters().grads(), grid, false);
    const double device_norm = train::global_gradient_norm(on_device.parameters(), device_adam,
                                                           on_device.parameters().grads(), grid, false);
    EXPECT_NEAR(device_norm, host_norm, 1e-12 * host_norm) << c.name;
    EXPECT_TRUE(train::finite_everywhere(on_device.parameters().grads(), grid)) << c.name;

    const double scale = optim::AdamW::clip_factor(host_norm, 1.0);
    host_adam.step(on_host.parameters(), on_host.parameters().grads(), 1e-2, scale);
    device_adam.step(on_device.parameters(), on_device.parameters().grads(), 1e-2, scale);
    EXPECT_EQ(device_adam.separate_masters(), c.dtype == DType::BF16) << c.name;
    // The device kernel does the CPU op's f32 arithmetic: equal within a few f32 ulp.
    const std::vector<float> got = host_f32(device_adam.masters(on_device.parameters()));
    const std::vector<float> want = host_f32(host_adam.masters(on_host.parameters()));
    EXPECT_TRUE(all_close(got, to_f64(want), kF32Relative, 1e-7)) << c.name;
  }
}

// One forward and backward of the model on the device against the same model on the host in
// f32. f32 storage agrees to f32 reassociation (GEMM blocking and tree reductions against the
// CPU's order); bf16 storage (the device's working copy and activations) within the error of
// a chain of bf16 roundings, each up to 2^-9 relative, through two layers, forward and back.
TEST(ModelOnDevice, ForwardAndBackwardMatchTheHost) {
  select_the_test_device();
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    const model::testing::OwnedBatch batch = model::testing::packed_batch(c.config.vocab_size, 21);
    const model::BatchInputs inputs(batch.view(), model::BatchLimits::of(c.config), "test batch");
    model::Transformer on_host(c.config, DType::F32);
    model::Transformer on_device(c.config, c.dtype, {}, cuda_backend::cuda_allocator());
    on_host.init_weights(3);
    on_device.init_weights(3);
    model::DeviceBatch staging(cuda_backend::cuda_allocator());
    const ops::LossSum host_loss = on_host.forward(inputs.batch());
    const ops::LossSum device_loss = on_device.forward(staging.upload(inputs.batch()));
    EXPECT_EQ(device_loss.count, host_loss.count);
    const bool bf16 = c.dtype == DType::BF16;
    EXPECT_NEAR(device_loss.mean(), host_loss.mean(), (bf16 ? 1e-3 : 1e-6) * host_loss.mean());

    const double scale = 1.0 / static_cast<double>(host_loss.count);
    on_host.backward(scale);
    on_device.backward(scale);
    const std::vector<float> got = host_f32(on_device.parameters().grads());
    const std::vector<float> want = host_f32(on_host.parameters().grads());
    double largest = 0, worst = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      largest = std::max(largest, std::fabs(double(want[i])));
      worst = std::max(worst, std::fabs(double(got[i]) - want[i]));
    }
    EXPECT_GT(largest, 0.0);
    EXPECT_LT(worst / largest, bf16 ? 2e-2 : 1e-5) << "worst " << worst << " of " << largest;
  }
}

// Incremental decoding with the KV cache on the device (kiln generate --device cuda): a
// prompt prefill, then one token at a time, each call's logits against the host model's, and
// the host model's full forward over the same ids as the independent check that the cache
// (written from the strided k/v views of the fused qkv rows) holds the right keys and values.
TEST(ModelOnDevice, KvCacheDecodingMatchesTheHost) {
  select_the_test_device();
  for (const Case& c : cases()) {
    if (c.dtype != DType::F32) continue;  // decoding runs the checkpoint's fp32 model
    SCOPED_TRACE(c.name);
    model::Transformer on_host(c.config, DType::F32);
    model::Transformer on_device(c.config, DType::F32, {}, cuda_backend::cuda_allocator());
    on_host.init_weights(5);
    on_device.init_weights(5);
    const std::int64_t capacity = 9;
    auto host_cache = on_host.make_kv_cache(1, capacity);
    auto device_cache = on_device.make_kv_cache(1, capacity);
    std::vector<std::uint32_t> ids = {3, 17, 4, 9, 11};
    const auto decode = [&](std::vector<std::uint32_t> feed) {
      const Tensor tokens = Tensor::of(feed.data(), {1, static_cast<std::int64_t>(feed.size())});
      const std::vector<float> want = host_f32(on_host.forward_decode(host_cache, tokens));
      const std::vector<float> got = host_f32(on_device.forward_decode(device_cache, tokens));
      EXPECT_TRUE(all_close(got, to_f64(want), 1e-5, 1e-6));
      return got;
    };
    decode(ids);
    std::vector<float> last;
    for (const std::uint32_t next : {7u, 2u, 12u, 5u}) {
      last = decode({next});
      ids.push_back(next);
    }
    EXPECT_EQ(device_cache.length, capacity);
    // The last decoded row equals the full forward's last row over the same nine ids.
    model::Batch whole;
    whole.tokens = Tensor::of(ids.data(), {1, capacity});
    const model::BatchInputs inputs(whole, model::BatchLimits::of(c.config), "decode check");
    on_host.forward(inputs.batch());
    const Tensor logits = on_host.logits();
    const std::vector<float> full = host_f32(logits.select(0).select(capacity - 1));
    EXPECT_TRUE(all_close(last, to_f64(full), 1e-5, 1e-6));
  }
}

TEST(ModelOnDevice, ANonFiniteGradientIsSeenOnTheDevice) {
  select_the_test_device();
  model::Transformer on_device(model::testing::tiny_llama(), DType::F32, {}, cuda_backend::cuda_allocator());
  auto world = parallel::world_communicator();
  parallel::ProcessGrid grid(*world, 1, 1, 1);
  EXPECT_TRUE(train::finite_everywhere(on_device.parameters().grads(), grid));
  const float nan = std::nanf("");
  ops::copy(on_device.parameters().grads().narrow(0, 5, 1), Tensor::of(&nan, {1}));
  EXPECT_FALSE(train::finite_everywhere(on_device.parameters().grads(), grid));
}

}  // namespace
}  // namespace kiln::cuda_test

namespace kiln::cuda_test {
namespace {

TEST(DeviceBatch, IndexTensorsArriveAsI32AndTheMaskAsU8) {
  select_the_test_device();
  const std::int64_t B = 2, T = 5;
  OwnedTensor tokens(DType::U16, {B, T}), targets(DType::I64, {B, T}), positions(DType::I32, {B, T});
  OwnedTensor doc_ids(DType::U32, {B, T}), mask(DType::U8, {B, T});
  for (std::int64_t i = 0; i < B * T; ++i) {
    tokens.data<std::uint16_t>()[i] = static_cast<std::uint16_t>(60000 + i);
    targets.data<std::int64_t>()[i] = 3 * i;
    positions.data<std::int32_t>()[i] = static_cast<std::int32_t>(i % 3);
    doc_ids.data<std::uint32_t>()[i] = static_cast<std::uint32_t>(i / 3);
    mask.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i % 2);
  }
  model::DeviceBatch staging(cuda_backend::cuda_allocator());
  const model::Batch& on_device = staging.upload({tokens, targets, mask, doc_ids, positions});
  const auto values = [](const Tensor& t) {
    EXPECT_EQ(t.device, Device::Cuda);
    OwnedTensor host(t.dtype, t.shape);
    ops::copy(host, t);
    return index_values(host, "test");
  };
  EXPECT_EQ(on_device.tokens.dtype, DType::I32);
  EXPECT_EQ(values(on_device.tokens), index_values(tokens, "test"));
  EXPECT_EQ(values(on_device.targets), index_values(targets, "test"));
  EXPECT_EQ(values(on_device.positions), index_values(positions, "test"));
  EXPECT_EQ(values(on_device.doc_ids), index_values(doc_ids, "test"));
  EXPECT_EQ(on_device.loss_mask.dtype, DType::U8);
  OwnedTensor mask_back(DType::U8, {B, T});
  ops::copy(mask_back, on_device.loss_mask);
  EXPECT_TRUE(std::equal(mask_back.data<std::uint8_t>(), mask_back.data<std::uint8_t>() + B * T,
                         mask.data<std::uint8_t>()));
  // Undefined stays undefined; the host allocator hands the batch through untouched.
  EXPECT_FALSE(staging.upload({tokens, {}, {}, {}, positions}).targets.defined());
  model::DeviceBatch on_host(memory::host_allocator());
  EXPECT_EQ(on_host.upload({tokens, {}, {}, {}, positions}).tokens.ptr, tokens.tensor().ptr);
}

// Uploads alternate between two pinned buffers and one device buffer: each batch, read back
// before the next upload, is its own, also when [B, T] grows (the buffers are replaced).
TEST(DeviceBatch, ConsecutiveUploadsEachArriveWhole) {
  select_the_test_device();
  model::DeviceBatch staging(cuda_backend::cuda_allocator());
  for (std::int64_t round = 0; round < 5; ++round) {
    const std::int64_t B = round < 3 ? 2 : 3, T = 7 + 4 * round;
    OwnedTensor tokens(DType::U32, {B, T}), positions(DType::I32, {B, T});
    for (std::int64_t i = 0; i < B * T; ++i) {
      tokens.data<std::uint32_t>()[i] = static_cast<std::uint32_t>(1000 * round + i);
      positions.data<std::int32_t>()[i] = static_cast<std::int32_t>(i % T);
    }
    const model::Batch& on_device = staging.upload({tokens, {}, {}, {}, positions});
    OwnedTensor back(DType::I32, {B, T});
    ops::copy(back, on_device.tokens);
    EXPECT_EQ(index_values(back, "test"), index_values(tokens, "test")) << "round " << round;
  }
}

}  // namespace
}  // namespace kiln::cuda_test
