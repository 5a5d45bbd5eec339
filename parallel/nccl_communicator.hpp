#pragma once
// The data groups of GPU ranks (DESIGN.md §6): a Communicator whose device tensors travel over
// NCCL (kernels/cuda/collectives.hpp) and whose host tensors travel over the same ranks' MPI
// group, which also bootstraps it (rank 0 makes NCCL's unique id and broadcasts it).
//
// Stream order: the blocking calls (tensor-parallel all-reduces, pipeline send/recv, the
// vocab-parallel loss statistics) run on the compute stream, so the next kernel sees their
// result without the host waiting. The *_async calls (data-parallel buckets) run on the
// communication stream after the kernels queued so far; their handle's wait() makes later
// compute work wait for them (an event), test() asks whether they are done. So "complete"
// means complete in stream order: read the result with kiln::ops (ordered on the compute
// stream), never straight from the host.
//
// reduce_scatter_async with uneven counts (ZeRO-1's buckets) is one NCCL group of reduces, one
// per rank that receives anything; even counts take NCCL's reduce-scatter.
#include <memory>
#include <string>

#include "kernels/cuda/collectives.hpp"
#include "parallel/communicator.hpp"
#include "parallel/communicator_factory.hpp"

namespace kiln::parallel {

// Data groups over NCCL for the active CUDA backend (the GPU, or the emulated device whose
// collectives move the bytes over the host group).
std::unique_ptr<CommunicatorFactory> nccl_communicator_factory();

// The host group as the emulated device's collectives (and NCCL's bootstrap) see it: raw bytes
// over `host`, which must outlive it.
std::unique_ptr<cuda_backend::HostTransport> host_transport(Communicator& host);

// One NCCL communicator over the ranks of `host` (every rank of it calls this).
std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host);

}  // namespace kiln::parallel
