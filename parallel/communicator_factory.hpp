#pragma once
// Which backend carries a process grid's data groups (DESIGN.md §6).
//
// The data groups (tp, dp, pp, embedding) move tensors: host tensors over MPI today, device
// tensors over NCCL with the CUDA backend. The grid asks a factory for them instead of
// inspecting the world communicator's type, so a new backend is one more factory. Control
// groups (host scalars) are always host groups split from the world (see ProcessGrid).
#include <memory>
#include <string>
#include <string_view>

#include "parallel/communicator.hpp"

namespace kiln::parallel {

// host: MPI (or a group of one) on host tensors; nccl: device tensors over NCCL, host tensors
// over the same ranks' MPI group (parallel/nccl_communicator.hpp).
enum class CommunicatorBackend { host, nccl };

class CommunicatorFactory {
 public:
  virtual ~CommunicatorFactory() = default;
  virtual CommunicatorBackend backend() const = 0;
  // A data group of the ranks of `world` with equal colour, ordered by key; every rank of the
  // world calls it.
  virtual std::unique_ptr<Communicator> data_group(Communicator& world, int color, int key, std::string name) = 0;
};

std::unique_ptr<CommunicatorFactory> communicator_factory(CommunicatorBackend backend);
std::string_view backend_name(CommunicatorBackend backend);

}  // namespace kiln::parallel
