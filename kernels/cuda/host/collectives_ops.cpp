// CUDA backend: collectives between GPUs (kernels/cuda/collectives.hpp). One class serves both
// builds: the lanes, brackets and events are CUDA runtime calls (emulated streams and events on
// the emulated device); only the library underneath differs: NCCL on the GPU, a host
// implementation over the group's HostTransport on the emulated device.
#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cuda/collectives.hpp"
#include "kernels/cuda/host/device_backend.hpp"
#include "kernels/device.hpp"
#include "kernels/tensor.hpp"

#if !KILN_CUDA_EMULATED && KILN_WITH_NCCL
#include <nccl.h>
#endif

namespace kiln::KILN_CUDA_NS {

namespace {

using cuda_backend::CollectivesId;
using cuda_backend::DeviceFence;
using cuda_backend::DeviceReduce;
using cuda_backend::HostTransport;
using cuda_backend::Lane;

// One operation of a bracket, as the caller gave it.
enum class Kind { all_reduce, reduce, reduce_scatter, all_gather, broadcast, send, recv };

const char* name_of(Kind kind) {
  switch (kind) {
    case Kind::all_reduce: return "all_reduce";
    case Kind::reduce: return "reduce";
    case Kind::reduce_scatter: return "reduce_scatter";
    case Kind::all_gather: return "all_gather";
    case Kind::broadcast: return "broadcast";
    case Kind::send: return "send";
    case Kind::recv: return "recv";
  }
  return "?";
}

bool is_point_to_point(Kind kind) { return kind == Kind::send || kind == Kind::recv; }

struct Operation {
  Kind kind;
  const void* send = nullptr;
  void* recv = nullptr;
  std::int64_t count = 0;
  DType dtype = DType::F32;
  DeviceReduce op = DeviceReduce::sum;
  int peer = 0;  // the root of reduce and broadcast, the other rank of send and recv
};

std::size_t bytes_of(std::int64_t count, DType dtype) { return static_cast<std::size_t>(count) * dtype_size(dtype); }

// The communication lane's end: an event on the communication stream that compute may wait for.
class StreamFence final : public DeviceFence {
 public:
  StreamFence(cudaEvent_t done, cudaStream_t compute) : done_(done), compute_(compute) {}
  ~StreamFence() override { cudaEventDestroy(done_); }
  StreamFence(const StreamFence&) = delete;
  StreamFence& operator=(const StreamFence&) = delete;

  bool reached() override {
    const cudaError_t status = cudaEventQuery(done_);
    if (status == cudaErrorNotReady) {
      (void)cudaGetLastError();
      return false;
    }
    check_cuda(status, "collectives: querying a communication event");
    return true;
  }
  void order_compute_after() override {
    check_cuda(cudaStreamWaitEvent(compute_, done_, 0), "collectives: ordering compute after communication");
  }

 private:
  cudaEvent_t done_;
  cudaStream_t compute_;
};

cudaEvent_t new_event() {
  cudaEvent_t event = nullptr;
  check_cuda(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "collectives: creating an event");
  return event;
}

// ---- the emulated library: NCCL's semantics over the host transport ---------------------------

#if KILN_CUDA_EMULATED

template <class T>
T load(const unsigned char* base, std::int64_t i) {
  T value;
  std::memcpy(&value, base + static_cast<std::size_t>(i) * sizeof(T), sizeof(T));
  return value;
}

template <class T>
void store(void* base, std::int64_t i, T value) {
  std::memcpy(static_cast<unsigned char*>(base) + static_cast<std::size_t>(i) * sizeof(T), &value, sizeof(T));
}

// out[i] = the reduction over ranks of block r's element i (blocks `stride` bytes apart), in
// rank order, in T's arithmetic.
template <class T>
void reduce_typed(const unsigned char* blocks, std::size_t stride, int ranks, void* out, std::int64_t count,
                  DeviceReduce op) {
  for (std::int64_t i = 0; i < count; ++i) {
    T acc = load<T>(blocks, i);
    for (int r = 1; r < ranks; ++r) {
      const T x = load<T>(blocks + static_cast<std::size_t>(r) * stride, i);
      acc = op == DeviceReduce::sum ? static_cast<T>(acc + x) : std::max(acc, x);
    }
    store<T>(out, i, acc);
  }
}

// bf16: every addition rounds to bf16, as each hop of NCCL's ring does.
void reduce_bf16(const unsigned char* blocks, std::size_t stride, int ranks, void* out, std::int64_t count,
                 DeviceReduce op) {
  const auto value = [](const unsigned char* base, std::int64_t i) { return to_float(load<BFloat16>(base, i)); };
  for (std::int64_t i = 0; i < count; ++i) {
    float acc = value(blocks, i);
    for (int r = 1; r < ranks; ++r) {
      const float x = value(blocks + static_cast<std::size_t>(r) * stride, i);
      acc = op == DeviceReduce::sum ? to_float(to_bfloat16(acc + x)) : std::max(acc, x);
    }
    store<BFloat16>(out, i, to_bfloat16(acc));
  }
}

void reduce_blocks(const unsigned char* blocks, std::size_t stride, int ranks, void* out, std::int64_t count,
                   DType dtype, DeviceReduce op) {
  switch (dtype) {
    case DType::F32: return reduce_typed<float>(blocks, stride, ranks, out, count, op);
    case DType::F64: return reduce_typed<double>(blocks, stride, ranks, out, count, op);
    case DType::I32: return reduce_typed<std::int32_t>(blocks, stride, ranks, out, count, op);
    case DType::I64: return reduce_typed<std::int64_t>(blocks, stride, ranks, out, count, op);
    case DType::U32: return reduce_typed<std::uint32_t>(blocks, stride, ranks, out, count, op);
    case DType::U8: return reduce_typed<std::uint8_t>(blocks, stride, ranks, out, count, op);
    case DType::BF16: return reduce_bf16(blocks, stride, ranks, out, count, op);
    case DType::F16:
    case DType::U16: break;
  }
  fail("collectives: the emulated device does not reduce {} (NCCL reduces f16; kiln never asks it to)",
       dtype_name(dtype));
}

class EmulatedLibrary {
 public:
  EmulatedLibrary(HostTransport& group) : group_(group) {}

  // Every rank must have been given the same id: the emulated device compares them all.
  void init(const CollectivesId& id) {
    std::vector<unsigned char> all(id.bytes.size() * static_cast<std::size_t>(group_.size()));
    group_.all_gather_bytes(all.data(), id.bytes.data(), id.bytes.size());
    for (int r = 0; r < group_.size(); ++r)
      if (std::memcmp(all.data() + r * id.bytes.size(), id.bytes.data(), id.bytes.size()) != 0)
        fail("collectives: rank {} of a group of {} was initialised with another unique id than rank {} (every rank "
             "of a communicator must pass the id its first rank made)",
             r, group_.size(), group_.rank());
  }

  // A bracket's operations, run when it ends: the collectives in order, then its send and recv.
  void run(const std::vector<Operation>& operations) {
    const Operation *send = nullptr, *recv = nullptr;
    for (const Operation& op : operations) {
      if (op.kind == Kind::send || op.kind == Kind::recv) {
        const Operation*& slot = op.kind == Kind::send ? send : recv;
        if (slot != nullptr)
          fail("collectives: the emulated device pairs one send and one recv per group; this group has more");
        slot = &op;
        continue;
      }
      run_collective(op);
    }
    if (send || recv)
      group_.exchange_bytes(send ? send->send : nullptr, send ? bytes_of(send->count, send->dtype) : 0,
                            send ? send->peer : -1, recv ? recv->recv : nullptr,
                            recv ? bytes_of(recv->count, recv->dtype) : 0, recv ? recv->peer : -1);
  }

 private:
  // Every rank's `bytes` from `mine`, gathered in rank order.
  std::vector<unsigned char> gathered(const void* mine, std::size_t bytes) {
    std::vector<unsigned char> staged(static_cast<const unsigned char*>(mine),
                                      static_cast<const unsigned char*>(mine) + bytes);
    std::vector<unsigned char> all(bytes * static_cast<std::size_t>(group_.size()));
    group_.all_gather_bytes(all.data(), staged.data(), bytes);
    return all;
  }

  void run_collective(const Operation& op) {
    const std::size_t bytes = bytes_of(op.count, op.dtype);
    const int rank = group_.rank(), ranks = group_.size();
    switch (op.kind) {
      case Kind::all_reduce: {
        const auto all = gathered(op.send, bytes);
        return reduce_blocks(all.data(), bytes, ranks, op.recv, op.count, op.dtype, op.op);
      }
      case Kind::reduce: {
        const auto all = gathered(op.send, bytes);
        if (rank == op.peer) reduce_blocks(all.data(), bytes, ranks, op.recv, op.count, op.dtype, op.op);
        return;
      }
      case Kind::reduce_scatter: {
        const auto all = gathered(op.send, bytes * static_cast<std::size_t>(ranks));
        return reduce_blocks(all.data() + static_cast<std::size_t>(rank) * bytes, bytes * static_cast<std::size_t>(ranks),
                             ranks, op.recv, op.count, op.dtype, op.op);
      }
      case Kind::all_gather: {
        const auto all = gathered(op.send, bytes);
        std::memcpy(op.recv, all.data(), all.size());
        return;
      }
      case Kind::broadcast: return group_.broadcast_bytes(op.recv, bytes, op.peer);
      case Kind::send:
      case Kind::recv: break;
    }
  }

  HostTransport& group_;
};

#endif

// ---- NCCL on the GPU ------------------------------------------------------------------------

#if !KILN_CUDA_EMULATED && KILN_WITH_NCCL

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    case DType::I32: return ncclInt32;
    case DType::I64: return ncclInt64;
    case DType::U32: return ncclUint32;
    case DType::U16: return ncclFloat16;  // moved as 2-byte elements, never reduced (nccl_reduces)
    case DType::U8: return ncclUint8;
  }
  return ncclUint8;
}

void check_nccl(ncclResult_t result, const char* what) {
  if (result == ncclSuccess) return;
  fail("NCCL {}: {} ({})", what, ncclGetErrorString(result), ncclGetLastError(nullptr));
}

class NcclLibrary {
 public:
  explicit NcclLibrary(HostTransport& group) : rank_(group.rank()), size_(group.size()) {}
  ~NcclLibrary() {
    if (comm_) ncclCommDestroy(comm_);
  }

  void init(const CollectivesId& id) {
    ncclUniqueId unique;
    static_assert(sizeof unique.internal == sizeof id.bytes);
    std::memcpy(unique.internal, id.bytes.data(), id.bytes.size());
    check_nccl(ncclCommInitRank(&comm_, size_, unique, rank_), "ncclCommInitRank");
  }

  void run(const std::vector<Operation>& operations, cudaStream_t stream) {
    check_nccl(ncclGroupStart(), "ncclGroupStart");
    for (const Operation& op : operations) issue(op, stream);
    check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  }

  void abort() noexcept {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

 private:
  void issue(const Operation& op, cudaStream_t stream) {
    const auto count = static_cast<std::size_t>(op.count);
    const ncclDataType_t type = nccl_type(op.dtype);
    const ncclRedOp_t reduce = op.op == DeviceReduce::sum ? ncclSum : ncclMax;
    switch (op.kind) {
      case Kind::all_reduce: return check_nccl(ncclAllReduce(op.send, op.recv, count, type, reduce, comm_, stream), "ncclAllReduce");
      case Kind::reduce: return check_nccl(ncclReduce(op.send, op.recv, count, type, reduce, op.peer, comm_, stream), "ncclReduce");
      case Kind::reduce_scatter:
        return check_nccl(ncclReduceScatter(op.send, op.recv, count, type, reduce, comm_, stream), "ncclReduceScatter");
      case Kind::all_gather: return check_nccl(ncclAllGather(op.send, op.recv, count, type, comm_, stream), "ncclAllGather");
      case Kind::broadcast: return check_nccl(ncclBroadcast(op.recv, op.recv, count, type, op.peer, comm_, stream), "ncclBroadcast");
      case Kind::send: return check_nccl(ncclSend(op.send, count, type, op.peer, comm_, stream), "ncclSend");
      case Kind::recv: return check_nccl(ncclRecv(op.recv, count, type, op.peer, comm_, stream), "ncclRecv");
    }
  }

  int rank_, size_;
  ncclComm_t comm_ = nullptr;
};

#endif

// ---- the communicator: lanes, brackets and the argument contract -------------------------------

#if KILN_CUDA_EMULATED || KILN_WITH_NCCL

#if KILN_CUDA_EMULATED
using Library = EmulatedLibrary;
#else
using Library = NcclLibrary;
#endif

class Collectives final : public cuda_backend::DeviceCollectives {
 public:
  Collectives(const CollectivesId& id, HostTransport& group, cudaStream_t compute, cudaStream_t communication)
      : rank_(group.rank()), size_(group.size()), compute_(compute), communication_(communication), library_(group) {
    library_.init(id);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void begin(Lane lane) override {
    if (open_) fail("collectives: begin() inside an open group (end() it first)");
    open_ = true;
    lane_ = lane;
    operations_.clear();
  }

  std::shared_ptr<DeviceFence> end() override {
    if (!open_) fail("collectives: end() without begin()");
    open_ = false;
    check_point_to_point_only_or_none();
    const cudaStream_t stream = lane_ == Lane::compute ? compute_ : communication_;
    if (lane_ == Lane::communication) {
      // The communication stream starts after the compute work queued so far (the gradients
      // it sends were written by it); compute may later wait for it through the fence.
      cudaEvent_t ready = new_event();
      check_cuda(cudaEventRecord(ready, compute_), "collectives: recording the compute stream");
      check_cuda(cudaStreamWaitEvent(communication_, ready, 0), "collectives: ordering communication after compute");
      cudaEventDestroy(ready);
    }
    run(stream);
    cudaEvent_t done = new_event();
    check_cuda(cudaEventRecord(done, stream), "collectives: recording the end of a group");
    return std::make_shared<StreamFence>(done, compute_);
  }

  void all_reduce(const void* send, void* recv, std::int64_t count, DType dtype, DeviceReduce op) override {
    add({Kind::all_reduce, send, recv, count, dtype, op, 0});
  }
  void reduce(const void* send, void* recv, std::int64_t count, DType dtype, int root) override {
    add({Kind::reduce, send, recv, count, dtype, DeviceReduce::sum, root});
  }
  void reduce_scatter(const void* send, void* recv, std::int64_t count, DType dtype) override {
    add({Kind::reduce_scatter, send, recv, count, dtype, DeviceReduce::sum, 0});
  }
  void all_gather(const void* send, void* recv, std::int64_t count, DType dtype) override {
    add({Kind::all_gather, send, recv, count, dtype, DeviceReduce::sum, 0});
  }
  void broadcast(void* data, std::int64_t count, DType dtype, int root) override {
    add({Kind::broadcast, data, data, count, dtype, DeviceReduce::sum, root});
  }
  void send(const void* data, std::int64_t count, DType dtype, int peer) override {
    add({Kind::send, data, nullptr, count, dtype, DeviceReduce::sum, peer});
  }
  void recv(void* data, std::int64_t count, DType dtype, int peer) override {
    add({Kind::recv, nullptr, data, count, dtype, DeviceReduce::sum, peer});
  }

  void abort() noexcept override {
#if !KILN_CUDA_EMULATED
    library_.abort();
#endif
  }

 private:
  void add(const Operation& op) {
    if (!open_) fail("collectives: {} outside begin()/end()", name_of(op.kind));
    check_contract(op);
    operations_.push_back(op);
  }

  void run(cudaStream_t stream) {
#if KILN_CUDA_EMULATED
    (void)stream;
    library_.run(operations_);
#else
    library_.run(operations_, stream);
#endif
    operations_.clear();
  }

  // ---- NCCL's argument contract --------------------------------------------------------------

  void check_contract(const Operation& op) const {
    const char* what = name_of(op.kind);
    if (op.count < 1) fail("collectives: {} of {} elements (at least 1)", what, op.count);
    const bool reduces = op.kind == Kind::all_reduce || op.kind == Kind::reduce || op.kind == Kind::reduce_scatter;
    if (reduces && op.dtype == DType::U16)
      fail("collectives: {} of u16: NCCL moves 2-byte raw elements but does not reduce them", what);
    const bool rooted = op.kind == Kind::reduce || op.kind == Kind::broadcast;
    if ((rooted || is_point_to_point(op.kind)) && (op.peer < 0 || op.peer >= size_))
      fail("collectives: {} names rank {} in a group of {}", what, op.peer, size_);
    if (is_point_to_point(op.kind) && op.peer == rank_) fail("collectives: {} to itself (rank {})", what, rank_);
    const std::size_t bytes = bytes_of(op.count, op.dtype), ranks = static_cast<std::size_t>(size_);
    switch (op.kind) {
      case Kind::all_reduce:
        require_device(what, "send", op.send, bytes);
        require_device(what, "recv", op.recv, bytes);
        return require_same_or_apart(what, op.send, bytes, op.recv, bytes);
      case Kind::reduce:
        require_device(what, "send", op.send, bytes);
        if (rank_ == op.peer) require_device(what, "recv", op.recv, bytes);
        return;
      case Kind::reduce_scatter:
        require_device(what, "send", op.send, bytes * ranks);
        require_device(what, "recv", op.recv, bytes);
        return require_in_place_at(what, op.send, bytes * ranks, op.recv, bytes, static_cast<const char*>(op.send) + rank_ * bytes);
      case Kind::all_gather:
        require_device(what, "send", op.send, bytes);
        require_device(what, "recv", op.recv, bytes * ranks);
        return require_in_place_at(what, op.recv, bytes * ranks, op.send, bytes,
                                   static_cast<const char*>(op.recv) + rank_ * bytes);
      case Kind::broadcast:
      case Kind::recv: return require_device(what, "buffer", op.recv, bytes);
      case Kind::send: return require_device(what, "buffer", op.send, bytes);
    }
  }

  static void require_device(const char* what, const char* name, const void* pointer, std::size_t bytes) {
    if (pointer == nullptr) fail("collectives: {}: `{}` is null", what, name);
#if KILN_CUDA_EMULATED
    const auto* last = static_cast<const char*>(pointer) + bytes - 1;
    if (!kiln::emu::is_device_pointer(pointer) || !kiln::emu::is_device_pointer(last))
      fail("collectives: {}: `{}` ({} bytes) is not (all) device memory: NCCL reads and writes it on the GPU", what,
           name, bytes);
#else
    (void)bytes;
#endif
  }

  // all_reduce: the same buffer (in place) or two that do not overlap.
  static void require_same_or_apart(const char* what, const void* a, std::size_t a_bytes, const void* b,
                                    std::size_t b_bytes) {
    if (a == b) return;
    if (overlap(a, a_bytes, b, b_bytes)) fail("collectives: {}: send and recv overlap without being the same buffer", what);
  }

  // The small buffer is either at `in_place` inside the large one, or apart from it.
  static void require_in_place_at(const char* what, const void* large, std::size_t large_bytes, const void* small,
                                  std::size_t small_bytes, const void* in_place) {
    if (small == in_place) return;
    if (overlap(large, large_bytes, small, small_bytes))
      fail("collectives: {}: the buffers overlap, but not as NCCL's in-place form (this rank's block of the large "
           "buffer)",
           what);
  }

  static bool overlap(const void* a, std::size_t a_bytes, const void* b, std::size_t b_bytes) {
    const auto x = reinterpret_cast<std::uintptr_t>(a), y = reinterpret_cast<std::uintptr_t>(b);
    return x < y + b_bytes && y < x + a_bytes;
  }

  // NCCL takes both kinds in one group; kiln's brackets are one or the other, which is what the
  // emulated device can pair.
  void check_point_to_point_only_or_none() const {
    const auto p2p = std::count_if(operations_.begin(), operations_.end(),
                                   [](const Operation& op) { return is_point_to_point(op.kind); });
    if (p2p != 0 && p2p != static_cast<std::ptrdiff_t>(operations_.size()))
      fail("collectives: a group mixes send/recv with collectives; issue them in separate groups");
  }

  int rank_, size_;
  cudaStream_t compute_, communication_;
  Library library_;
  bool open_ = false;
  Lane lane_ = Lane::compute;
  std::vector<Operation> operations_;
};

#endif

}  // namespace

// ---- the backend's side ---------------------------------------------------------------------

cudaStream_t DeviceBackend::communication_stream() {
  if (!communication_)
    check_cuda(cudaStreamCreateWithFlags(&communication_, cudaStreamNonBlocking),
               "CUDA backend: creating the communication stream");
  return communication_;
}

cuda_backend::CollectivesId DeviceBackend::new_collectives_id() {
  CollectivesId id;
#if KILN_CUDA_EMULATED
  std::random_device entropy;
  for (unsigned char& byte : id.bytes) byte = static_cast<unsigned char>(entropy());
#elif KILN_WITH_NCCL
  ncclUniqueId unique;
  check_nccl(ncclGetUniqueId(&unique), "ncclGetUniqueId");
  std::memcpy(id.bytes.data(), unique.internal, id.bytes.size());
#else
  fail("collectives: this kiln was built without NCCL (nccl.h and libnccl were not found with the CUDA toolkit); "
       "install NCCL and rebuild to train on more than one GPU");
#endif
  return id;
}

std::unique_ptr<cuda_backend::DeviceCollectives> DeviceBackend::make_collectives(const CollectivesId& id,
                                                                                 HostTransport& group) {
#if KILN_CUDA_EMULATED || KILN_WITH_NCCL
  return std::make_unique<Collectives>(id, group, compute_, communication_stream());
#else
  (void)id, (void)group;
  fail("collectives: this kiln was built without NCCL; install NCCL and rebuild to train on more than one GPU");
#endif
}

}  // namespace kiln::KILN_CUDA_NS

namespace kiln::kernels {

#if !KILN_CUDA_EMULATED
std::string nccl_version() {
#if KILN_WITH_NCCL
  int version = 0;
  if (ncclGetVersion(&version) != ncclSuccess) return "NCCL (version unknown)";
  return "NCCL " + std::to_string(version / 10000) + "." + std::to_string(version % 10000 / 100) + "." +
         std::to_string(version % 100);
#else
  return "NCCL not built";
#endif
}
#endif

}  // namespace kiln::kernels
