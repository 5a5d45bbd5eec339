#pragma once
// Collectives and point-to-point messages over a group of ranks (DESIGN.md §6).
//
// The model and trainer only see this interface. MpiCommunicator works on host tensors over an
// MPI communicator; a single process (no mpirun) gets a communicator of size 1 whose
// collectives are identities. An NCCL implementation for device tensors slots in behind the
// same calls (stream-ordered) with the CUDA backend.
//
// Collectives must be made by every rank of the group in the same order; the blocking ones
// return when done, the *_async ones return a CollectiveHandle (collective_handle.hpp) and
// count, for that order, when they start. Several may be in flight on one group at once.
// Tensors must be contiguous; dtypes F32, F64, I32, I64, U32, U16, U8 (reductions: floating
// and integer types). Errors (an MPI failure, a mismatched size) throw kiln::Error; a peer
// that dies or hangs ends the job once a wait passes parallel.timeout_s (watchdog.hpp).
//
// Each communicator counts the bytes this rank sends, per kind of operation, so benchmarks can
// compare them with the analytic traffic of a layout. The count is the payload a ring
// algorithm sends: all-reduce 2(n-1)/n * bytes, reduce-scatter and all-gather (n-1)/n * bytes
// of the full buffer, broadcast bytes (root), send bytes.
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "kernels/tensor.hpp"
#include "parallel/collective_handle.hpp"

namespace kiln::parallel {

enum class ReduceOp { Sum, Max };

struct TrafficCounters {
  std::uint64_t all_reduce = 0;
  std::uint64_t reduce_scatter = 0;
  std::uint64_t all_gather = 0;
  std::uint64_t broadcast = 0;
  std::uint64_t send = 0;
  std::uint64_t total() const { return all_reduce + reduce_scatter + all_gather + broadcast + send; }
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  const std::string& name() const { return name_; }  // "tp", "dp", "pp", "world", ...

  // In place: every rank ends with the reduction of every rank's x.
  virtual void all_reduce(Tensor x, ReduceOp op = ReduceOp::Sum) = 0;
  // full [size * n] on every rank -> shard [n] = the sum over ranks of full[rank*n, (rank+1)*n).
  virtual void reduce_scatter(Tensor shard, Tensor full) = 0;
  // shard [n] on every rank -> full [size * n], rank r's shard at [r*n, (r+1)*n).
  virtual void all_gather(Tensor full, Tensor shard) = 0;
  virtual void broadcast(Tensor x, int root) = 0;
  virtual void send(Tensor x, int destination) = 0;
  virtual void recv(Tensor x, int source) = 0;
  // Sends `out` to `destination` while receiving `in` from `source`, without the deadlock two
  // blocking sends towards each other would risk (pipeline steady state).
  virtual void send_recv(Tensor out, int destination, Tensor in, int source) = 0;
  virtual void barrier() = 0;

  // ---- non-blocking (the buffers are the operation's until the handle is complete) ----
  virtual CollectiveHandle all_reduce_async(Tensor x, ReduceOp op = ReduceOp::Sum) = 0;
  // Uneven reduce-scatter: `full` [sum(counts)] on every rank; rank r receives into `part`
  // [counts[r]] the sum over ranks of full[counts[0] + ... + counts[r-1], + counts[r]).
  // counts has one entry per rank (zeros allowed) and must be alive until this call returns.
  virtual CollectiveHandle reduce_scatter_async(Tensor part, Tensor full, std::span<const std::int64_t> counts) = 0;
  // send_recv's non-blocking form: ring attention passes blocks around while it computes.
  virtual CollectiveHandle send_recv_async(Tensor out, int destination, Tensor in, int source) = 0;
  // Uneven all-gather in place: `full` [sum(counts)] on every rank, rank r's counts[r] elements
  // already at offset counts[0] + ... + counts[r-1]; afterwards every rank holds all of them.
  // counts as above.
  virtual CollectiveHandle all_gather_async(Tensor full, std::span<const std::int64_t> counts) = 0;

  // Ranks with equal `color` form a new group of this backend, ordered by `key`
  // (MPI_Comm_split). Every rank of this group must call it.
  virtual std::unique_ptr<Communicator> split(int color, int key, std::string name) = 0;

  const TrafficCounters& traffic() const { return traffic_; }
  void reset_traffic() { traffic_ = {}; }

 protected:
  explicit Communicator(std::string name) : name_(std::move(name)) {}
  TrafficCounters traffic_;

 private:
  std::string name_;
};

// The bytes one rank sends for a ring collective over `bytes` of buffer on `size` ranks, as
// TrafficCounters count them: factor (n-1)/n bytes (factor 2 for an all-reduce, 1 for a
// reduce-scatter or an all-gather). Every backend counts with it.
std::uint64_t ring_share(std::uint64_t bytes, int size, double factor);

// The whole job: MPI_COMM_WORLD under a launcher, else a group of one.
std::unique_ptr<Communicator> world_communicator();

// parent.split(color, key, name), kept for callers that predate Communicator::split.
std::unique_ptr<Communicator> split_communicator(Communicator& parent, int color, int key, std::string name);

}  // namespace kiln::parallel
