#include "parallel/communicator_factory.hpp"

#include "parallel/nccl_communicator.hpp"

namespace kiln::parallel {

namespace {

// Data groups are groups of the world's own kind (MPI, or a group of one).
class HostCommunicatorFactory final : public CommunicatorFactory {
 public:
  CommunicatorBackend backend() const override { return CommunicatorBackend::host; }
  std::unique_ptr<Communicator> data_group(Communicator& world, int color, int key, std::string name) override {
    return world.split(color, key, std::move(name));
  }
};

}  // namespace

std::unique_ptr<CommunicatorFactory> communicator_factory(CommunicatorBackend backend) {
  switch (backend) {
    case CommunicatorBackend::host: return std::make_unique<HostCommunicatorFactory>();
    case CommunicatorBackend::nccl: return nccl_communicator_factory();
  }
  return std::make_unique<HostCommunicatorFactory>();
}

std::string_view backend_name(CommunicatorBackend backend) {
  switch (backend) {
    case CommunicatorBackend::host: return "host";
    case CommunicatorBackend::nccl: return "nccl";
  }
  return "unknown";
}

}  // namespace kiln::parallel
