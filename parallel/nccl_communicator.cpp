#include "parallel/nccl_communicator.hpp"

#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels/cuda/backend.hpp"
#include "parallel/device_collective_watch.hpp"
#include "trainer/core/error.hpp"

namespace kiln::parallel {

namespace {

using cuda_backend::DeviceCollectives;
using cuda_backend::DeviceFence;
using cuda_backend::DeviceReduce;
using cuda_backend::Lane;

Tensor bytes_at(const void* data, std::size_t bytes) {
  return Tensor(const_cast<void*>(data), DType::U8, Shape{static_cast<std::int64_t>(bytes)});
}

class HostGroupTransport final : public cuda_backend::HostTransport {
 public:
  explicit HostGroupTransport(Communicator& host) : host_(host) {}
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  void all_gather_bytes(void* all, const void* mine, std::size_t bytes) override {
    host_.all_gather(bytes_at(all, bytes * static_cast<std::size_t>(size())), bytes_at(mine, bytes));
  }
  void broadcast_bytes(void* data, std::size_t bytes, int root) override { host_.broadcast(bytes_at(data, bytes), root); }
  void exchange_bytes(const void* out, std::size_t out_bytes, int destination, void* in, std::size_t in_bytes,
                      int source) override {
    if (out && in) return host_.send_recv(bytes_at(out, out_bytes), destination, bytes_at(in, in_bytes), source);
    if (out) return host_.send(bytes_at(out, out_bytes), destination);
    if (in) host_.recv(bytes_at(in, in_bytes), source);
  }

 private:
  Communicator& host_;
};

// A data-parallel collective on the communication stream.
class PendingDeviceCollective final : public PendingCollective {
 public:
  explicit PendingDeviceCollective(std::shared_ptr<DeviceFence> fence) : fence_(std::move(fence)) {}
  ~PendingDeviceCollective() override {
    try {
      wait();  // later kernels must not touch the buffers before it is done
    } catch (const Error&) {
    }
  }
  bool test() override { return fence_->reached(); }
  void wait() override {
    if (!ordered_) fence_->order_compute_after();
    ordered_ = true;
  }

 private:
  std::shared_ptr<DeviceFence> fence_;
  bool ordered_ = false;
};

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(std::unique_ptr<Communicator> host)
      : Communicator(host->name()), host_(std::move(host)), transport_(*host_) {
    auto& backend = cuda_backend::active_backend("the NCCL communicator");
    cuda_backend::CollectivesId id;
    if (host_->rank() == 0) id = backend.new_collectives_id();
    transport_.broadcast_bytes(id.bytes.data(), id.bytes.size(), 0);
    nccl_ = backend.make_collectives(id, transport_);
    abort_on_timeout_ = on_device_timeout([collectives = nccl_.get()] { collectives->abort(); });
  }

  int rank() const override { return host_->rank(); }
  int size() const override { return host_->size(); }

  void all_reduce(Tensor x, ReduceOp op) override {
    if (on_host(x, "all_reduce")) return host_->all_reduce(x, op);
    run(Lane::compute, "all_reduce", [&] { nccl_->all_reduce(x.ptr, x.ptr, x.numel(), x.dtype, reduce_of(op)); });
    traffic_.all_reduce += ring_share(x.nbytes(), size(), 2.0);
  }

  void reduce_scatter(Tensor shard, Tensor full) override {
    if (on_host(shard, "reduce_scatter") && on_host(full, "reduce_scatter")) return host_->reduce_scatter(shard, full);
    check_parts("reduce_scatter", full, shard);
    run(Lane::compute, "reduce_scatter", [&] { nccl_->reduce_scatter(full.ptr, shard.ptr, shard.numel(), shard.dtype); });
    traffic_.reduce_scatter += ring_share(full.nbytes(), size(), 1.0);
  }

  void all_gather(Tensor full, Tensor shard) override {
    if (on_host(shard, "all_gather") && on_host(full, "all_gather")) return host_->all_gather(full, shard);
    check_parts("all_gather", full, shard);
    run(Lane::compute, "all_gather", [&] { nccl_->all_gather(shard.ptr, full.ptr, shard.numel(), shard.dtype); });
    traffic_.all_gather += ring_share(full.nbytes(), size(), 1.0);
  }

  void broadcast(Tensor x, int root) override {
    if (on_host(x, "broadcast")) return host_->broadcast(x, root);
    run(Lane::compute, "broadcast", [&] { nccl_->broadcast(x.ptr, x.numel(), x.dtype, root); });
    if (rank() == root) traffic_.broadcast += x.nbytes();
  }

  void send(Tensor x, int destination) override {
    if (on_host(x, "send")) return host_->send(x, destination);
    run(Lane::compute, "send", [&] { nccl_->send(x.ptr, x.numel(), x.dtype, destination); });
    traffic_.send += x.nbytes();
  }

  void recv(Tensor x, int source) override {
    if (on_host(x, "recv")) return host_->recv(x, source);
    run(Lane::compute, "recv", [&] { nccl_->recv(x.ptr, x.numel(), x.dtype, source); });
  }

  // Both directions in one NCCL group, so two ranks sending to each other cannot deadlock.
  void send_recv(Tensor out, int destination, Tensor in, int source) override {
    if (on_host(out, "send_recv") && on_host(in, "send_recv")) return host_->send_recv(out, destination, in, source);
    run(Lane::compute, "send_recv", [&] {
      nccl_->send(out.ptr, out.numel(), out.dtype, destination);
      nccl_->recv(in.ptr, in.numel(), in.dtype, source);
    });
    traffic_.send += out.nbytes();
  }

  void barrier() override { host_->barrier(); }

  CollectiveHandle send_recv_async(Tensor out, int destination, Tensor in, int source) override {
    if (on_host(out, "send_recv_async") && on_host(in, "send_recv_async"))
      return host_->send_recv_async(out, destination, in, source);
    auto fence = run(Lane::communication, "send_recv_async", [&] {
      nccl_->send(out.ptr, out.numel(), out.dtype, destination);
      nccl_->recv(in.ptr, in.numel(), in.dtype, source);
    });
    traffic_.send += out.nbytes();
    return CollectiveHandle(std::make_unique<PendingDeviceCollective>(std::move(fence)));
  }

  CollectiveHandle all_reduce_async(Tensor x, ReduceOp op) override {
    if (on_host(x, "all_reduce_async")) return host_->all_reduce_async(x, op);
    auto fence = run(Lane::communication, "all_reduce_async",
                     [&] { nccl_->all_reduce(x.ptr, x.ptr, x.numel(), x.dtype, reduce_of(op)); });
    traffic_.all_reduce += ring_share(x.nbytes(), size(), 2.0);
    return CollectiveHandle(std::make_unique<PendingDeviceCollective>(std::move(fence)));
  }

  CollectiveHandle reduce_scatter_async(Tensor part, Tensor full, std::span<const std::int64_t> counts) override {
    if (on_host(part, "reduce_scatter_async") && on_host(full, "reduce_scatter_async"))
      return host_->reduce_scatter_async(part, full, counts);
    check_counts(part, full, counts);
    auto fence = run(Lane::communication, "reduce_scatter_async", [&] {
      if (std::all_of(counts.begin(), counts.end(), [&](std::int64_t n) { return n == counts[0]; })) {
        nccl_->reduce_scatter(full.ptr, part.ptr, part.numel(), part.dtype);
      } else {
        reduce_each_part(part, full, counts);
      }
    });
    traffic_.reduce_scatter += ring_share(full.nbytes(), size(), 1.0);
    return CollectiveHandle(std::make_unique<PendingDeviceCollective>(std::move(fence)));
  }

  // Each rank's part broadcast from it, in place, in one group: NCCL's uneven all-gather.
  CollectiveHandle all_gather_async(Tensor full, std::span<const std::int64_t> counts) override {
    if (on_host(full, "all_gather_async")) return host_->all_gather_async(full, counts);
    if (counts.size() != static_cast<std::size_t>(size()) ||
        full.numel() != std::accumulate(counts.begin(), counts.end(), std::int64_t{0}))
      fail("all_gather_async on the {} group: full {} does not match the {} counts", name(), full.str(), counts.size());
    auto fence = run(Lane::communication, "all_gather_async", [&] {
      std::int64_t offset = 0;
      for (int r = 0; r < size(); ++r) {
        const std::int64_t count = counts[static_cast<std::size_t>(r)];
        if (count > 0) nccl_->broadcast(full.narrow(0, offset, count).ptr, count, full.dtype, r);
        offset += count;
      }
    });
    traffic_.all_gather += ring_share(full.nbytes(), size(), 1.0);
    return CollectiveHandle(std::make_unique<PendingDeviceCollective>(std::move(fence)));
  }

  std::unique_ptr<Communicator> split(int color, int key, std::string name) override {
    return make_nccl_communicator(host_->split(color, key, std::move(name)));
  }

 private:
  static DeviceReduce reduce_of(ReduceOp op) { return op == ReduceOp::Sum ? DeviceReduce::sum : DeviceReduce::max; }

  // One bracket of NCCL operations, watched until it finishes on the device.
  template <class Issue>
  std::shared_ptr<DeviceFence> run(Lane lane, const char* op, Issue&& issue) {
    nccl_->begin(lane);
    issue();
    std::shared_ptr<DeviceFence> fence = nccl_->end();
    device_collective_watch().watch(fence, op, name());
    return fence;
  }

  // Host tensors take the host group; a device tensor must be contiguous.
  bool on_host(const Tensor& x, const char* op) const {
    if (!x.defined() || x.device == Device::Cpu) return true;
    if (!x.is_contiguous()) fail("{} on the {} group: the tensor {} is not contiguous", op, name(), x.str());
    return false;
  }

  void check_parts(const char* op, const Tensor& full, const Tensor& shard) const {
    if (full.device != shard.device || full.dtype != shard.dtype || full.numel() != shard.numel() * size())
      fail("{} on the {} group: full {} is not {} x shard {} on the same device", op, name(), full.str(), size(),
           shard.str());
  }

  void check_counts(const Tensor& part, const Tensor& full, std::span<const std::int64_t> counts) const {
    const std::int64_t total = std::accumulate(counts.begin(), counts.end(), std::int64_t{0});
    if (counts.size() != static_cast<std::size_t>(size()) || full.numel() != total ||
        part.numel() != counts[static_cast<std::size_t>(rank())] || part.dtype != full.dtype ||
        part.device != full.device)
      fail("reduce_scatter_async on the {} group: full {} and part {} do not match the {} counts", name(), full.str(),
           part.str(), counts.size());
  }

  // Rank r's range of `full` reduced onto rank r: the uneven reduce-scatter as one group.
  void reduce_each_part(const Tensor& part, const Tensor& full, std::span<const std::int64_t> counts) {
    std::int64_t offset = 0;
    for (int r = 0; r < size(); ++r) {
      const std::int64_t count = counts[static_cast<std::size_t>(r)];
      if (count > 0) {
        const Tensor range = full.narrow(0, offset, count);
        nccl_->reduce(range.ptr, r == rank() ? part.ptr : nullptr, count, full.dtype, r);
      }
      offset += count;
    }
  }

  std::unique_ptr<Communicator> host_;
  HostGroupTransport transport_;
  std::unique_ptr<DeviceCollectives> nccl_;
  std::shared_ptr<void> abort_on_timeout_;  // unregistered before nccl_ is destroyed
};

class NcclCommunicatorFactory final : public CommunicatorFactory {
 public:
  CommunicatorBackend backend() const override { return CommunicatorBackend::nccl; }
  std::unique_ptr<Communicator> data_group(Communicator& world, int color, int key, std::string name) override {
    return make_nccl_communicator(world.split(color, key, std::move(name)));
  }
};

}  // namespace

std::unique_ptr<cuda_backend::HostTransport> host_transport(Communicator& host) {
  return std::make_unique<HostGroupTransport>(host);
}

std::unique_ptr<CommunicatorFactory> nccl_communicator_factory() { return std::make_unique<NcclCommunicatorFactory>(); }

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host) {
  return std::make_unique<NcclCommunicator>(std::move(host));
}

}  // namespace kiln::parallel
