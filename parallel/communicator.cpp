#include "parallel/communicator.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <numeric>
#include <vector>

#include "kernels/ops/elementwise.hpp"
#include "parallel/mpi_environment.hpp"
#include "parallel/watchdog.hpp"
#include "trainer/core/error.hpp"

#ifdef KILN_WITH_MPI
#include <mpi.h>
#endif

namespace kiln::parallel {

namespace {

void check_contiguous(const Communicator& comm, const char* op, Tensor x) {
  if (x.defined() && !x.is_contiguous()) fail("{} on the {} group: the tensor {} is not contiguous", op, comm.name(), x.str());
  // A group of one moves nothing, so a device tensor is fine there (one-GPU training); the
  // device collectives of larger groups are NCCL's.
  if (x.defined() && x.device != Device::Cpu && comm.size() > 1) {
    fail("{} on the {} group: {} is a device tensor; host communicators take host tensors", op, comm.name(), x.str());
  }
}

void check_same_dtype(const Communicator& comm, const char* op, Tensor a, Tensor b) {
  if (a.dtype != b.dtype) fail("{} on the {} group: dtypes differ ({} vs {})", op, comm.name(), a.str(), b.str());
}

void check_counts(const Communicator& comm, Tensor part, Tensor full, std::span<const std::int64_t> counts) {
  check_contiguous(comm, "reduce_scatter_async", part);
  check_contiguous(comm, "reduce_scatter_async", full);
  check_same_dtype(comm, "reduce_scatter_async", part, full);
  if (counts.size() != static_cast<std::size_t>(comm.size())) {
    fail("reduce_scatter_async on the {} group: {} counts for {} ranks", comm.name(), counts.size(), comm.size());
  }
  const std::int64_t total = std::accumulate(counts.begin(), counts.end(), std::int64_t{0});
  if (full.numel() != total || part.numel() != counts[static_cast<std::size_t>(comm.rank())]) {
    fail("reduce_scatter_async on the {} group: full {} and part {} do not match the counts (total {}, this rank {})",
         comm.name(), full.str(), part.str(), total, counts[static_cast<std::size_t>(comm.rank())]);
  }
}

void check_gather_counts(const Communicator& comm, Tensor full, std::span<const std::int64_t> counts) {
  check_contiguous(comm, "all_gather_async", full);
  const std::int64_t total = std::accumulate(counts.begin(), counts.end(), std::int64_t{0});
  if (counts.size() != static_cast<std::size_t>(comm.size()) || full.numel() != total)
    fail("all_gather_async on the {} group: full {} does not match the {} counts (total {})", comm.name(), full.str(),
         counts.size(), total);
}

// A group of one rank: what a single process without mpirun trains with.
class SelfCommunicator final : public Communicator {
 public:
  explicit SelfCommunicator(std::string name) : Communicator(std::move(name)) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce(Tensor x, ReduceOp) override { check_contiguous(*this, "all_reduce", x); }
  void reduce_scatter(Tensor shard, Tensor full) override { copy_whole(shard, full, "reduce_scatter"); }
  void all_gather(Tensor full, Tensor shard) override { copy_whole(full, shard, "all_gather"); }
  void broadcast(Tensor x, int) override { check_contiguous(*this, "broadcast", x); }
  void send(Tensor, int destination) override { fail("send to rank {} in a group of one ({})", destination, name()); }
  void recv(Tensor, int source) override { fail("recv from rank {} in a group of one ({})", source, name()); }
  void send_recv(Tensor, int destination, Tensor, int) override {
    fail("send_recv with rank {} in a group of one ({})", destination, name());
  }
  void barrier() override {}

  CollectiveHandle all_reduce_async(Tensor x, ReduceOp op) override {
    all_reduce(x, op);
    return {};
  }
  CollectiveHandle reduce_scatter_async(Tensor part, Tensor full, std::span<const std::int64_t> counts) override {
    check_counts(*this, part, full, counts);
    copy_whole(part, full, "reduce_scatter_async");
    return {};
  }
  CollectiveHandle all_gather_async(Tensor full, std::span<const std::int64_t> counts) override {
    check_gather_counts(*this, full, counts);  // this rank's part is all of full, in place
    return {};
  }
  CollectiveHandle send_recv_async(Tensor, int destination, Tensor, int) override {
    fail("send_recv_async with rank {} in a group of one ({})", destination, name());
  }
  std::unique_ptr<Communicator> split(int, int, std::string name) override {
    return std::make_unique<SelfCommunicator>(std::move(name));
  }

 private:
  void copy_whole(Tensor to, Tensor from, const char* op) {
    check_contiguous(*this, op, to);
    check_contiguous(*this, op, from);
    check_same_dtype(*this, op, to, from);
    if (to.numel() != from.numel()) fail("{} on the {} group: sizes {} and {} differ", op, name(), to.str(), from.str());
    if (to.ptr != from.ptr) std::memcpy(to.ptr, from.ptr, to.nbytes());
  }
};

#ifdef KILN_WITH_MPI

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I32: return MPI_INT32_T;
    case DType::I64: return MPI_INT64_T;
    case DType::U32: return MPI_UINT32_T;
    case DType::U16: return MPI_UINT16_T;
    case DType::U8: return MPI_UINT8_T;
    case DType::BF16:
    case DType::F16: return MPI_UINT16_T;  // moved, never reduced
  }
  return MPI_BYTE;
}

int checked_count(std::int64_t numel, const char* op) {
  if (numel > INT_MAX) fail("{}: {} elements exceed one MPI message; split the tensor", op, numel);
  return static_cast<int>(numel);
}

void check_mpi(int code, const char* op, const std::string& group) {
  if (code == MPI_SUCCESS) return;
  char message[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, message, &length);
  fail("MPI {} on the {} group failed: {}", op, group, std::string(message, static_cast<std::size_t>(length)));
}

// One MPI request in flight, and the arrays MPI reads until it completes.
class PendingMpiRequest final : public PendingCollective {
 public:
  PendingMpiRequest(const char* op, std::string group, std::vector<int> counts = {}, std::vector<int> displacements = {})
      : op_(op), group_(std::move(group)), counts_(std::move(counts)), displacements_(std::move(displacements)) {}
  ~PendingMpiRequest() override {
    // The buffers must not be freed under MPI; an MPI error is not thrown out of a destructor.
    try {
      if (pending()) wait_with_deadline(count_, requests_, MPI_STATUSES_IGNORE, op_, group_);
    } catch (const Error&) {
    }
  }
  MPI_Request* request() { return &requests_[0]; }
  // A second request of the same operation (send_recv: the send beside the receive).
  MPI_Request* second_request() {
    count_ = 2;
    return &requests_[1];
  }
  const int* counts() const { return counts_.data(); }
  const int* displacements() const { return displacements_.data(); }
  bool test() override {
    int complete = 0;
    check_mpi(MPI_Testall(count_, requests_, &complete, MPI_STATUSES_IGNORE), op_, group_);
    return complete != 0;
  }
  void wait() override { wait_with_deadline(count_, requests_, MPI_STATUSES_IGNORE, op_, group_); }

 private:
  const char* op_;
  std::string group_;
  bool pending() const { return requests_[0] != MPI_REQUEST_NULL || requests_[1] != MPI_REQUEST_NULL; }

  std::vector<int> counts_, displacements_;
  MPI_Request requests_[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
  int count_ = 1;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, bool owned, std::string name) : Communicator(std::move(name)), comm_(comm), owned_(owned) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned_ && !finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  MPI_Comm handle() const { return comm_; }

  void all_reduce(Tensor x, ReduceOp op) override {
    check_contiguous(*this, "all_reduce", x);
    if (size_ == 1) return;
    check_reducible(x, "all_reduce");
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, x.ptr, checked_count(x.numel(), "all_reduce"), mpi_type(x.dtype),
                         op == ReduceOp::Sum ? MPI_SUM : MPI_MAX, comm_, &request),
          "all_reduce");
    finish(request, "all_reduce");
    traffic_.all_reduce += ring_share(x.nbytes(), size_, 2.0);
  }

  void reduce_scatter(Tensor shard, Tensor full) override {
    check_contiguous(*this, "reduce_scatter", shard);
    check_contiguous(*this, "reduce_scatter", full);
    check_same_dtype(*this, "reduce_scatter", shard, full);
    if (full.numel() != shard.numel() * size_) {
      fail("reduce_scatter on the {} group: full {} is not {} x shard {}", name(), full.str(), size_, shard.str());
    }
    if (size_ == 1) return ops::copy(shard, full);  // wherever they live: nothing travels
    MPI_Request request;
    check(MPI_Ireduce_scatter_block(full.ptr, shard.ptr, checked_count(shard.numel(), "reduce_scatter"),
                                    mpi_type(shard.dtype), MPI_SUM, comm_, &request),
          "reduce_scatter");
    finish(request, "reduce_scatter");
    traffic_.reduce_scatter += ring_share(full.nbytes(), size_, 1.0);
  }

  void all_gather(Tensor full, Tensor shard) override {
    check_contiguous(*this, "all_gather", shard);
    check_contiguous(*this, "all_gather", full);
    check_same_dtype(*this, "all_gather", shard, full);
    if (full.numel() != shard.numel() * size_) {
      fail("all_gather on the {} group: full {} is not {} x shard {}", name(), full.str(), size_, shard.str());
    }
    if (size_ == 1) return ops::copy(full, shard);
    const int count = checked_count(shard.numel(), "all_gather");
    MPI_Request request;
    check(MPI_Iallgather(shard.ptr, count, mpi_type(shard.dtype), full.ptr, count, mpi_type(full.dtype), comm_,
                         &request),
          "all_gather");
    finish(request, "all_gather");
    traffic_.all_gather += ring_share(full.nbytes(), size_, 1.0);
  }

  void broadcast(Tensor x, int root) override {
    check_contiguous(*this, "broadcast", x);
    if (size_ == 1) return;
    MPI_Request request;
    check(MPI_Ibcast(x.ptr, checked_count(x.numel(), "broadcast"), mpi_type(x.dtype), root, comm_, &request),
          "broadcast");
    finish(request, "broadcast");
    if (rank_ == root) traffic_.broadcast += x.nbytes();
  }

  void send(Tensor x, int destination) override {
    check_contiguous(*this, "send", x);
    MPI_Request request;
    check(MPI_Isend(x.ptr, checked_count(x.numel(), "send"), mpi_type(x.dtype), destination, kTag, comm_, &request),
          "send");
    finish(request, "send");
    traffic_.send += x.nbytes();
  }

  void recv(Tensor x, int source) override {
    check_contiguous(*this, "recv", x);
    MPI_Request request;
    MPI_Status status;
    check(MPI_Irecv(x.ptr, checked_count(x.numel(), "recv"), mpi_type(x.dtype), source, kTag, comm_, &request), "recv");
    wait_with_deadline(1, &request, &status, "recv", name());
    int received = 0;
    MPI_Get_count(&status, mpi_type(x.dtype), &received);
    if (received != x.numel()) {
      fail("recv on the {} group: expected {} elements from rank {}, got {}", name(), x.numel(), source, received);
    }
  }

  void send_recv(Tensor out, int destination, Tensor in, int source) override {
    check_contiguous(*this, "send_recv", out);
    check_contiguous(*this, "send_recv", in);
    MPI_Request requests[2];
    check(MPI_Irecv(in.ptr, checked_count(in.numel(), "send_recv"), mpi_type(in.dtype), source, kTag, comm_,
                    &requests[0]),
          "send_recv");
    check(MPI_Isend(out.ptr, checked_count(out.numel(), "send_recv"), mpi_type(out.dtype), destination, kTag, comm_,
                    &requests[1]),
          "send_recv");
    wait_with_deadline(2, requests, MPI_STATUSES_IGNORE, "send_recv", name());
    traffic_.send += out.nbytes();
  }

  CollectiveHandle send_recv_async(Tensor out, int destination, Tensor in, int source) override {
    check_contiguous(*this, "send_recv_async", out);
    check_contiguous(*this, "send_recv_async", in);
    auto pending = std::make_unique<PendingMpiRequest>("send_recv_async", name());
    check(MPI_Irecv(in.ptr, checked_count(in.numel(), "send_recv_async"), mpi_type(in.dtype), source, kTag, comm_,
                    pending->request()),
          "send_recv_async");
    check(MPI_Isend(out.ptr, checked_count(out.numel(), "send_recv_async"), mpi_type(out.dtype), destination, kTag,
                    comm_, pending->second_request()),
          "send_recv_async");
    traffic_.send += out.nbytes();
    return CollectiveHandle(std::move(pending));
  }

  void barrier() override {
    MPI_Request request;
    check(MPI_Ibarrier(comm_, &request), "barrier");
    finish(request, "barrier");
  }

  CollectiveHandle all_reduce_async(Tensor x, ReduceOp op) override {
    check_contiguous(*this, "all_reduce_async", x);
    if (size_ == 1) return {};
    check_reducible(x, "all_reduce_async");
    auto pending = std::make_unique<PendingMpiRequest>("all_reduce_async", name());
    check(MPI_Iallreduce(MPI_IN_PLACE, x.ptr, checked_count(x.numel(), "all_reduce_async"), mpi_type(x.dtype),
                         op == ReduceOp::Sum ? MPI_SUM : MPI_MAX, comm_, pending->request()),
          "all_reduce_async");
    traffic_.all_reduce += ring_share(x.nbytes(), size_, 2.0);
    return CollectiveHandle(std::move(pending));
  }

  CollectiveHandle reduce_scatter_async(Tensor part, Tensor full, std::span<const std::int64_t> counts) override {
    check_counts(*this, part, full, counts);
    check_reducible(full, "reduce_scatter_async");
    std::vector<int> mpi_counts;
    for (const std::int64_t count : counts) mpi_counts.push_back(checked_count(count, "reduce_scatter_async"));
    auto pending = std::make_unique<PendingMpiRequest>("reduce_scatter_async", name(), std::move(mpi_counts));
    check(MPI_Ireduce_scatter(full.ptr, part.ptr, pending->counts(), mpi_type(full.dtype), MPI_SUM, comm_,
                              pending->request()),
          "reduce_scatter_async");
    traffic_.reduce_scatter += ring_share(full.nbytes(), size_, 1.0);
    return CollectiveHandle(std::move(pending));
  }

  CollectiveHandle all_gather_async(Tensor full, std::span<const std::int64_t> counts) override {
    check_gather_counts(*this, full, counts);
    if (size_ == 1) return {};
    std::vector<int> mpi_counts, displacements;
    int at = 0;
    for (const std::int64_t count : counts) {
      mpi_counts.push_back(checked_count(count, "all_gather_async"));
      displacements.push_back(at);
      at += mpi_counts.back();
    }
    auto pending =
        std::make_unique<PendingMpiRequest>("all_gather_async", name(), std::move(mpi_counts), std::move(displacements));
    check(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full.ptr, pending->counts(), pending->displacements(),
                          mpi_type(full.dtype), comm_, pending->request()),
          "all_gather_async");
    traffic_.all_gather += ring_share(full.nbytes(), size_, 1.0);
    return CollectiveHandle(std::move(pending));
  }

  std::unique_ptr<Communicator> split(int color, int key, std::string name) override {
    MPI_Comm child;
    check(MPI_Comm_split(comm_, color, key, &child), "split");
    return std::make_unique<MpiCommunicator>(child, true, std::move(name));
  }

 private:
  void check_reducible(Tensor x, const char* op) const {
    if (x.dtype == DType::BF16 || x.dtype == DType::F16) fail("{} on the {} group: {} cannot be reduced on the host", op, name(), x.str());
  }

  static constexpr int kTag = 7;

  void check(int code, const char* op) const { check_mpi(code, op, name()); }
  // Every blocking operation is its non-blocking form waited for with the watchdog's deadline.
  void finish(MPI_Request& request, const char* op) const {
    wait_with_deadline(1, &request, MPI_STATUSES_IGNORE, op, name());
  }

  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0;
  int size_ = 1;
};

#endif

}  // namespace

std::uint64_t ring_share(std::uint64_t bytes, int size, double factor) {
  return static_cast<std::uint64_t>(factor * static_cast<double>(bytes) * (size - 1) / size);
}

std::unique_ptr<Communicator> world_communicator() {
  const auto& environment = MpiEnvironment::instance();
#ifdef KILN_WITH_MPI
  if (launched_under_mpi()) return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, false, "world");
#endif
  (void)environment;
  return std::make_unique<SelfCommunicator>("world");
}

std::unique_ptr<Communicator> split_communicator(Communicator& parent, int color, int key, std::string name) {
  return parent.split(color, key, std::move(name));
}

}  // namespace kiln::parallel
