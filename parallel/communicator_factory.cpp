#include "parallel/communicator_factory.hpp"

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
  }
  return std::make_unique<HostCommunicatorFactory>();
}

std::string_view backend_name(CommunicatorBackend backend) {
  switch (backend) {
    case CommunicatorBackend::host: return "host";
  }
  return "unknown";
}

}  // namespace kiln::parallel
