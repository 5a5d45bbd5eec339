// The NCCL communicator (parallel/nccl_communicator.hpp) on the emulated device, 2 or 4 ranks:
// every collective of kiln's Communicator on device tensors gives what the host group gives on
// the same values (bf16 sums rounded per hop, in rank order), the asynchronous ones too (the
// uneven reduce-scatter of ZeRO as a group of reduces), host tensors still travel over MPI,
// DataParallel over it equals DataParallel over the host group with ZeRO off and on, and the
// library's argument contract (device memory, in-place forms, peers, one unique id per
// communicator) is enforced with a message.
#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

#include "kernels/cuda/backend.hpp"
#include "kernels/cuda/backend_registry.hpp"
#include "kernels/memory/device_buffer.hpp"
#include "kernels/ops.hpp"
#include "parallel/communicator.hpp"
#include "parallel/data_parallel.hpp"
#include "parallel/nccl_communicator.hpp"
#include "tests/core/error_testing.hpp"

#if defined(KILN_WITH_CUDA_EMULATION)

namespace kiln::parallel {
namespace {

using kiln::testing::error_of;

Communicator& world() {
  static auto communicator = world_communicator();
  return *communicator;
}

cuda_backend::CudaBackend& emulated_device() {
  kiln::cuda_emu::register_emulated_backend();
  cuda_backend::select_cuda_backend(cuda_backend::BackendKind::Emulated, "nccl test");
  return cuda_backend::active_backend("nccl test");
}

Communicator& nccl_world() {
  emulated_device();
  static auto communicator = make_nccl_communicator(world().split(0, world().rank(), "nccl"));
  return *communicator;
}

// A device tensor holding `values` (converted to `dtype`), and its buffer.
struct OnDevice {
  memory::DeviceBuffer buffer;
  Tensor tensor;
  OnDevice(const std::vector<float>& values, DType dtype)
      : buffer(values.size() * dtype_size(dtype) + 16, memory::MemoryCategory::workspace,
               cuda_backend::cuda_allocator()),
        tensor(buffer.view(dtype, Shape{static_cast<std::int64_t>(values.size())})) {
    OwnedTensor host(DType::F32, Shape{static_cast<std::int64_t>(values.size())});
    std::copy(values.begin(), values.end(), host.data<float>());
    ops::copy(tensor, host);
  }
  std::vector<float> values() const {
    OwnedTensor host(DType::F32, tensor.shape);
    ops::copy(host, tensor);
    return {host.data<float>(), host.data<float>() + tensor.numel()};
  }
};

// Rank-dependent values that are not all representable after a bf16 sum.
std::vector<float> values_of(int rank, std::int64_t n, float scale = 1.0f) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[i] = scale * (0.37f * static_cast<float>(i % 11) - 1.3f + 0.11f * rank);
  return v;
}

std::vector<float> host_all_reduce(std::vector<float> mine, ReduceOp op = ReduceOp::Sum) {
  world().all_reduce(Tensor::of(mine.data(), {static_cast<std::int64_t>(mine.size())}), op);
  return mine;
}

TEST(NcclCommunicator, AllReduceOfDeviceTensorsEqualsTheHostGroup) {
  auto& nccl = nccl_world();
  const int rank = world().rank();
  OnDevice x(values_of(rank, 37), DType::F32);
  nccl.all_reduce(x.tensor);
  const std::vector<float> want = host_all_reduce(values_of(rank, 37));
  const std::vector<float> got = x.values();
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5f) << i;

  OnDevice m(values_of(rank, 9), DType::F32);
  nccl.all_reduce(m.tensor, ReduceOp::Max);
  EXPECT_EQ(m.values(), host_all_reduce(values_of(rank, 9), ReduceOp::Max));
}

// bf16 sums round after each hop, in rank order: the same as summing the bf16 values one rank
// at a time with rounding, which differs from one exact sum rounded once.
TEST(NcclCommunicator, Bf16AllReduceRoundsAfterEachRank) {
  auto& nccl = nccl_world();
  const int ranks = world().size();
  const std::int64_t n = 64;
  OnDevice x(values_of(world().rank(), n, 3.1f), DType::BF16);
  nccl.all_reduce(x.tensor);
  const std::vector<float> got = x.values();
  for (std::int64_t i = 0; i < n; ++i) {
    float acc = to_float(to_bfloat16(values_of(0, n, 3.1f)[i]));
    for (int r = 1; r < ranks; ++r) acc = to_float(to_bfloat16(acc + to_float(to_bfloat16(values_of(r, n, 3.1f)[i]))));
    EXPECT_EQ(got[i], acc) << i;
  }
}

TEST(NcclCommunicator, ReduceScatterAllGatherAndBroadcast) {
  auto& nccl = nccl_world();
  const int rank = world().rank(), ranks = world().size();
  const std::int64_t part = 5;
  OnDevice full(values_of(rank, part * ranks), DType::F32), shard(std::vector<float>(part, 0.0f), DType::F32);
  nccl.reduce_scatter(shard.tensor, full.tensor);
  const std::vector<float> sums = host_all_reduce(values_of(rank, part * ranks));
  const std::vector<float> mine = shard.values();
  for (std::int64_t i = 0; i < part; ++i) EXPECT_NEAR(mine[i], sums[rank * part + i], 1e-5f);

  OnDevice gathered(std::vector<float>(part * ranks, 0.0f), DType::F32);
  nccl.all_gather(gathered.tensor, shard.tensor);
  const std::vector<float> all = gathered.values();
  for (std::size_t i = 0; i < all.size(); ++i) EXPECT_NEAR(all[i], sums[i], 1e-5f);

  OnDevice b(values_of(rank, 7), DType::F32);
  nccl.broadcast(b.tensor, ranks - 1);
  EXPECT_EQ(b.values(), values_of(ranks - 1, 7));
}

TEST(NcclCommunicator, SendRecvAroundARingAndHostTensorsOverMpi) {
  auto& nccl = nccl_world();
  const int rank = world().rank(), ranks = world().size();
  OnDevice out(values_of(rank, 12), DType::F32), in(std::vector<float>(12, 0.0f), DType::F32);
  nccl.send_recv(out.tensor, (rank + 1) % ranks, in.tensor, (rank + ranks - 1) % ranks);
  EXPECT_EQ(in.values(), values_of((rank + ranks - 1) % ranks, 12));

  // A host tensor on the same communicator goes over the host group.
  std::vector<double> count{static_cast<double>(rank + 1)};
  nccl.all_reduce(Tensor::of(count.data(), {1}));
  EXPECT_EQ(count[0], ranks * (ranks + 1) / 2.0);
}

TEST(NcclCommunicator, AsyncAllReduceAndUnevenReduceScatter) {
  auto& nccl = nccl_world();
  const int rank = world().rank(), ranks = world().size();
  OnDevice x(values_of(rank, 33), DType::F32);
  CollectiveHandle handle = nccl.all_reduce_async(x.tensor);
  handle.wait();
  const std::vector<float> want = host_all_reduce(values_of(rank, 33));
  const std::vector<float> got = x.values();
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5f);

  // Rank r receives r + 2 elements (rank 0 of 4 receives none when counts[0] = 0).
  std::vector<std::int64_t> counts;
  for (int r = 0; r < ranks; ++r) counts.push_back(r == 0 ? 0 : r + 2);
  const std::int64_t total = std::accumulate(counts.begin(), counts.end(), std::int64_t{0});
  const std::int64_t first = std::accumulate(counts.begin(), counts.begin() + rank, std::int64_t{0});
  OnDevice full(values_of(rank, total), DType::F32);
  OnDevice part(std::vector<float>(static_cast<std::size_t>(std::max<std::int64_t>(1, counts[rank])), 0.0f), DType::F32);
  const Tensor mine = part.tensor.narrow(0, 0, counts[rank]);
  nccl.reduce_scatter_async(mine, full.tensor, counts).wait();
  const std::vector<float> sums = host_all_reduce(values_of(rank, total));
  const std::vector<float> received = part.values();
  for (std::int64_t i = 0; i < counts[rank]; ++i) EXPECT_NEAR(received[i], sums[first + i], 1e-5f) << i;
}

// The trainer's data-parallel schedule over NCCL on device gradients gives what it gives over
// MPI on host gradients: plain and ZeRO (reduce-scatter of buckets, all-gather of parameters).
TEST(NcclCommunicator, DataParallelOverDeviceGradientsEqualsTheHostGroup) {
  auto& nccl = nccl_world();
  const int rank = world().rank();
  const std::int64_t numel = 1003;
  const std::vector<std::int64_t> ready{100, 400, 700};
  for (const bool zero : {false, true}) {
    SCOPED_TRACE(zero ? "zero" : "plain");
    DataParallel host_dp(world(), numel, DType::F32, zero, ready, 1024, 256);
    DataParallel device_dp(nccl, numel, DType::F32, zero, ready, 1024, 256, cuda_backend::cuda_allocator());
    ASSERT_EQ(host_dp.buckets(), device_dp.buckets());
    std::vector<float> grads = values_of(rank, numel);
    OnDevice device_grads(grads, DType::F32);
    device_dp.start(device_grads.tensor);
    for (auto offset = ready.rbegin(); offset != ready.rend(); ++offset) device_dp.gradients_final_from(*offset);
    const Tensor device_result = device_dp.finish();
    const Tensor host_result = host_dp.reduce_gradients(Tensor::of(grads.data(), {numel}));
    OwnedTensor got(DType::F32, device_result.shape);
    ops::copy(got, device_result);
    ASSERT_EQ(got.tensor().numel(), host_result.numel());
    for (std::int64_t i = 0; i < host_result.numel(); ++i)
      ASSERT_FLOAT_EQ(got.data<float>()[i], host_result.data<float>()[i]) << i;
    if (!zero) continue;
    std::vector<float> params(static_cast<std::size_t>(numel), -1.0f);
    for (std::int64_t i = device_dp.shard_begin(); i < device_dp.shard_end(); ++i) params[i] = static_cast<float>(i);
    OnDevice device_params(params, DType::F32);
    device_dp.all_gather_parameters(device_params.tensor);
    const std::vector<float> gathered = device_params.values();
    for (std::int64_t i = 0; i < numel; ++i) ASSERT_EQ(gathered[i], static_cast<float>(i)) << i;
  }
}

// The emulated library refuses what NCCL would not take, naming it.
TEST(NcclCommunicator, TheLibraryContractIsChecked) {
  auto& backend = emulated_device();
  world().barrier();
  cuda_backend::CollectivesId id;
  if (world().rank() == 0) id = backend.new_collectives_id();
  world().broadcast(Tensor(id.bytes.data(), DType::U8, Shape{128}), 0);
  const auto transport_of_world = host_transport(world());
  cuda_backend::HostTransport& transport = *transport_of_world;
  auto nccl = backend.make_collectives(id, transport);
  OnDevice x(values_of(0, 16), DType::F32);
  std::vector<float> host(16);
  const auto refused = [&](auto&& issue) {
    nccl->begin(cuda_backend::Lane::compute);
    const std::string message = error_of(issue);
    nccl->end();
    return message;
  };
  EXPECT_NE(refused([&] { nccl->all_reduce(host.data(), host.data(), 16, DType::F32, cuda_backend::DeviceReduce::sum); })
                .find("not (all) device memory"),
            std::string::npos);
  EXPECT_NE(refused([&] { nccl->all_reduce(x.tensor.ptr, x.tensor.ptr, 4096, DType::F32, cuda_backend::DeviceReduce::sum); })
                .find("not (all) device memory"),
            std::string::npos)
      << "far past the buffer's end";
  auto* base = static_cast<float*>(x.tensor.ptr);
  EXPECT_NE(refused([&] { nccl->all_reduce(base, base + 1, 8, DType::F32, cuda_backend::DeviceReduce::sum); })
                .find("overlap"),
            std::string::npos);
  // reduce_scatter in place must receive into this rank's block of the input.
  OnDevice big(values_of(0, 4 * world().size()), DType::F32);
  auto* big_base = static_cast<float*>(big.tensor.ptr);
  const int wrong_block = (world().rank() + 1) % world().size();
  if (world().size() > 1)
    EXPECT_NE(refused([&] { nccl->reduce_scatter(big_base, big_base + 4 * wrong_block, 4, DType::F32); })
                  .find("in-place"),
              std::string::npos);
  EXPECT_NE(refused([&] { nccl->send(base, 4, DType::F32, world().size()); }).find("names rank"), std::string::npos);
  EXPECT_NE(refused([&] { nccl->all_reduce(base, base, 4, DType::U16, cuda_backend::DeviceReduce::sum); }).find("u16"),
            std::string::npos);
  EXPECT_NE(error_of([&] { nccl->end(); }).find("without begin"), std::string::npos);

  // Each rank with its own id: every rank learns that the ids differ.
  const cuda_backend::CollectivesId own = backend.new_collectives_id();
  if (world().size() > 1)
    EXPECT_NE(error_of([&] { (void)backend.make_collectives(own, transport); }).find("another unique id"),
              std::string::npos);
}

}  // namespace
}  // namespace kiln::parallel

#endif
