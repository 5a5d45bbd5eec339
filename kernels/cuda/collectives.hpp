#pragma once
// Collectives between GPUs, behind one narrow interface (DESIGN.md §3, §7): NCCL on the GPU,
// an emulation over the job's host group on the emulated device. Plain C++, no CUDA or NCCL
// header, so parallel/nccl_communicator.* builds on it in every configuration.
//
// One DeviceCollectives is one NCCL communicator of `size` ranks. Operations are issued in
// brackets, begin(lane) ... end(), each bracket one NCCL group, on the lane it names:
//   Lane::compute        in stream order with the kernels (tensor and pipeline parallelism:
//                        the next kernel needs the result).
//   Lane::communication  on the backend's communication stream, after everything queued on
//                        the compute stream so far (an event), so it overlaps the kernels
//                        queued next (data-parallel buckets); its fence's
//                        order_compute_after() makes later compute work wait for it.
// end() returns the bracket's fence on either lane: the watchdog asks it whether the bracket
// has finished on the device (parallel/device_collective_watch.hpp).
// Buffers are device memory of the active CUDA backend, untouched by anyone else until the
// bracket is complete in stream order; counts are elements of `dtype`. In-place forms as NCCL
// defines them: all_reduce send == recv; reduce_scatter recv == send + rank * count;
// all_gather send == recv + rank * count.
//
// The emulated side checks NCCL's argument contract (device memory of the right extent, a
// dtype NCCL reduces, in-place rules, roots and peers in range, balanced brackets, every rank
// initialised with the same unique id) and moves the bytes with the host transport when the
// bracket ends, reducing in rank order. The emulated device runs each bracket at once (it has
// no concurrency to overlap), so it cannot show a missing event between the two streams: that
// is for the GPU to show (scripts/gpu_check.sh). It pairs at most one send and one recv per
// bracket (the pipeline's exchange); larger point-to-point groups are refused there.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/tensor.hpp"

namespace kiln::cuda_backend {

enum class Lane { compute, communication };
enum class DeviceReduce { sum, max };

// NCCL's ncclUniqueId: made by one rank, handed to the others over the host group.
struct CollectivesId {
  std::array<unsigned char, 128> bytes{};
};

// How the emulated device's collectives reach the other processes: raw bytes over the same
// ranks' host group (kiln's MPI communicator). The GPU side uses it only to agree on the id.
class HostTransport {
 public:
  virtual ~HostTransport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // mine [bytes] of every rank -> all [size * bytes], rank r's at r * bytes.
  virtual void all_gather_bytes(void* all, const void* mine, std::size_t bytes) = 0;
  virtual void broadcast_bytes(void* data, std::size_t bytes, int root) = 0;
  // Sends `out_bytes` to `destination` (or nothing when out is null) while receiving
  // `in_bytes` from `source` (or nothing when in is null).
  virtual void exchange_bytes(const void* out, std::size_t out_bytes, int destination, void* in,
                              std::size_t in_bytes, int source) = 0;
};

// A bracket of collectives in flight on the device.
class DeviceFence {
 public:
  virtual ~DeviceFence() = default;
  // True once the collective has finished on the device; never blocks.
  virtual bool reached() = 0;
  // Kernels queued on the compute stream from now on run after the collective (the host does
  // not wait). The result may then be read by any later op.
  virtual void order_compute_after() = 0;
};

class DeviceCollectives {
 public:
  virtual ~DeviceCollectives() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  virtual void begin(Lane lane) = 0;
  virtual std::shared_ptr<DeviceFence> end() = 0;

  virtual void all_reduce(const void* send, void* recv, std::int64_t count, DType dtype, DeviceReduce op) = 0;
  // send [count] of every rank -> recv [count] on `root` only (the sum); recv unused elsewhere.
  virtual void reduce(const void* send, void* recv, std::int64_t count, DType dtype, int root) = 0;
  // send [size * count] -> recv [count]: the sum over ranks of send[rank * count, + count).
  virtual void reduce_scatter(const void* send, void* recv, std::int64_t count, DType dtype) = 0;
  // send [count] -> recv [size * count], rank r's at r * count.
  virtual void all_gather(const void* send, void* recv, std::int64_t count, DType dtype) = 0;
  virtual void broadcast(void* data, std::int64_t count, DType dtype, int root) = 0;
  virtual void send(const void* data, std::int64_t count, DType dtype, int peer) = 0;
  virtual void recv(void* data, std::int64_t count, DType dtype, int peer) = 0;

  // Ends every operation of this communicator in flight (a peer died or hangs): what the
  // watchdog calls before it ends the job.
  virtual void abort() noexcept = 0;
};

}  // namespace kiln::cuda_backend
