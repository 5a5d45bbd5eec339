// The process's CUDA backend: which one is installed, and the allocator over its memory.
#include "kernels/cuda/backend.hpp"

#include <cstdlib>
#include <mutex>
#include <string_view>

#include "kernels/cuda/backend_registry.hpp"
#include "trainer/core/error.hpp"

namespace kiln::cuda_backend {

namespace {

struct Registry {
  std::mutex mutex;
  BackendFactory gpu = nullptr;
  BackendFactory emulated = nullptr;
  CudaBackend* active = nullptr;
  std::size_t live_allocations = 0;
};

Registry& registry() {
  static Registry instance;
  return instance;
}

std::string_view kind_name(BackendKind kind) { return kind == BackendKind::Gpu ? "GPU" : "emulated device"; }

// Device memory of the active backend, zero-filled (as every kiln allocator hands out). The
// backends align to 256 bytes (cudaMalloc's guarantee); a larger alignment is refused rather
// than silently not honoured.
class CudaAllocator final : public memory::Allocator {
 public:
  static constexpr std::size_t kAlignment = 256;

  Device device() const override { return Device::Cuda; }
  std::string_view name() const override { return "cuda"; }

  void* allocate(std::size_t bytes, std::size_t alignment) override {
    if (alignment > kAlignment || alignment == 0 || (alignment & (alignment - 1)) != 0)
      fail("cuda allocator: alignment {} is not a power of two up to {}", alignment, kAlignment);
    void* memory = active_backend("cuda allocator").allocate(allocation_size(bytes, alignment));
    std::lock_guard lock(registry().mutex);
    ++registry().live_allocations;
    return memory;
  }
  std::size_t allocation_size(std::size_t bytes, std::size_t /*alignment*/) const override {
    return (bytes + kAlignment - 1) / kAlignment * kAlignment;
  }
  void free(void* memory, std::size_t /*bytes*/, std::size_t /*alignment*/) noexcept override {
    if (memory == nullptr) return;
    CudaBackend* backend = nullptr;
    {
      std::lock_guard lock(registry().mutex);
      backend = registry().active;
      --registry().live_allocations;
    }
    if (backend) backend->free(memory);
  }
};

}  // namespace

void register_cuda_backend(BackendKind kind, BackendFactory factory) {
  std::lock_guard lock(registry().mutex);
  (kind == BackendKind::Gpu ? registry().gpu : registry().emulated) = factory;
}

bool has_active_backend() {
  std::lock_guard lock(registry().mutex);
  return registry().active != nullptr;
}

CudaBackend& active_backend(const char* who) {
  std::lock_guard lock(registry().mutex);
  if (registry().active == nullptr)
    fail("{}: a tensor is on the CUDA device, but this process selected no CUDA backend (train.device: cuda "
         "selects one)",
         who);
  return *registry().active;
}

BackendKind requested_backend_kind() {
  const char* requested = std::getenv("KILN_CUDA_DEVICE");
  return requested != nullptr && std::string_view(requested) == "emulated" ? BackendKind::Emulated : BackendKind::Gpu;
}

void select_cuda_backend(BackendKind kind, const std::string& setting) {
  std::lock_guard lock(registry().mutex);
  Registry& r = registry();
  BackendFactory factory = kind == BackendKind::Gpu ? r.gpu : r.emulated;
  if (factory == nullptr) {
    if (kind == BackendKind::Gpu)
      fail("{}: this kiln was built without the CUDA backend (no nvcc at build time, or -DKILN_CUDA=OFF). "
           "Fix: rebuild on a machine with the CUDA toolkit (scripts/build.sh), or use train.device: cpu",
           setting);
    fail("{}: KILN_CUDA_DEVICE=emulated asks for the emulated device, but this kiln was built without it. "
         "Fix: rebuild with -DKILN_CUDA_EMULATION=ON, or unset KILN_CUDA_DEVICE",
         setting);
  }
  CudaBackend& backend = factory(setting);  // throws when the device is not usable
  if (r.active == &backend) return;
  if (r.active != nullptr && r.live_allocations > 0)
    fail("{}: cannot switch to the {} while {} allocation(s) of the {} are live", setting, kind_name(kind),
         r.live_allocations, kind_name(r.active->kind()));
  r.active = &backend;
}

memory::Allocator& cuda_allocator() {
  static CudaAllocator allocator;
  return allocator;
}

}  // namespace kiln::cuda_backend
