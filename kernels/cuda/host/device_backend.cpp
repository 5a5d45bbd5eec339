// The CUDA backend's memory, copies and stream (kernels/cuda/host/device_backend.hpp), and
// how each build registers its device.
#include "kernels/cuda/host/device_backend.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/backend_registry.hpp"
#include "trainer/core/error.hpp"

namespace kiln::KILN_CUDA_NS {

namespace {

double mib(std::size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

constexpr std::size_t kCachedTables = 16;

// Page-locked (cudaMallocHost or registered) host memory: the device reads it by DMA after
// the copy call returns, so the caller must not reuse it before the copy has run.
bool is_pinned_host(const void* pointer) {
#if KILN_CUDA_EMULATED
  return kiln::emu::is_kernel_accessible(pointer) && !kiln::emu::is_device_pointer(pointer);
#else
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, pointer) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeHost;
#endif
}

}  // namespace

void check_cuda(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();  // a failed call also sets the sticky last error; kiln reports it here
  fail("{}: {} ({})", what, cudaGetErrorName(status), cudaGetErrorString(status));
}

DeviceBackend::DeviceBackend(std::string device_name) : device_name_(std::move(device_name)) {
  check_cuda(cudaStreamCreateWithFlags(&compute_, cudaStreamNonBlocking), "CUDA backend: creating the compute stream");
}

DeviceBackend::~DeviceBackend() {
  gemm_.reset();
  if (ones_f32_) cudaFree(ones_f32_);
  if (ones_bf16_) cudaFree(ones_bf16_);
  if (workspace_) cudaFree(workspace_);
  for (const StagedTable& table : tables_) cudaFree(table.device);
  if (ragged_table_) cudaFree(ragged_table_);
  if (scalars_) cudaFree(scalars_);
  if (communication_) cudaStreamDestroy(communication_);
  if (compute_) cudaStreamDestroy(compute_);
}

cuda_backend::BackendKind DeviceBackend::kind() const {
  return KILN_CUDA_EMULATED ? cuda_backend::BackendKind::Emulated : cuda_backend::BackendKind::Gpu;
}

void* DeviceBackend::allocate(std::size_t bytes) {
  void* memory = nullptr;
  const cudaError_t status = cudaMalloc(&memory, bytes);
  if (status == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    const cuda_backend::DeviceMemory left = this->memory();
    fail("out of GPU memory on {}: {:.1f} MiB asked, {:.1f} MiB of {:.1f} MiB free. Fix: lower "
         "train.micro_batch_size (gradient accumulation keeps the batch) or train.seq_len",
         device_name_, mib(bytes), mib(left.free_bytes), mib(left.total_bytes));
  }
  check_cuda(status, "CUDA backend: cudaMalloc");
  // kiln's allocators hand out zero-filled memory; the memset is ordered before any kernel
  // that uses the memory, since both go to the compute stream.
  check_cuda(cudaMemsetAsync(memory, 0, bytes, compute_), "CUDA backend: zero-filling new memory");
  return memory;
}

void DeviceBackend::free(void* memory) noexcept {
  // cudaFree synchronises the device, so no kernel still queued can touch freed memory.
  if (memory) (void)cudaFree(memory);
}

cuda_backend::DeviceMemory DeviceBackend::memory() const {
  cuda_backend::DeviceMemory info;
  if (cudaMemGetInfo(&info.free_bytes, &info.total_bytes) != cudaSuccess) (void)cudaGetLastError();
  return info;
}

void DeviceBackend::copy_to_device(void* device_dst, const void* host_src, std::size_t bytes) {
  if (bytes == 0) return;
  check_cuda(cudaMemcpyAsync(device_dst, host_src, bytes, cudaMemcpyHostToDevice, compute_),
             "CUDA backend: copy to the device");
  // From pageable memory the driver has staged the bytes when the call returns, so the queued
  // work is not waited for; a pinned source is read later, by DMA, so wait for that copy.
  if (is_pinned_host(host_src)) check_cuda(cudaStreamSynchronize(compute_), "CUDA backend: copy to the device");
}

void DeviceBackend::copy_to_host(void* host_dst, const void* device_src, std::size_t bytes) {
  if (bytes == 0) return;
  check_cuda(cudaMemcpyAsync(host_dst, device_src, bytes, cudaMemcpyDeviceToHost, compute_),
             "CUDA backend: copy to the host");
  check_cuda(cudaStreamSynchronize(compute_), "CUDA backend: copy to the host");
}

void DeviceBackend::copy_on_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;
  check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, compute_), "CUDA backend: device copy");
}

void DeviceBackend::zero(void* device_dst, std::size_t bytes) {
  if (bytes == 0) return;
  check_cuda(cudaMemsetAsync(device_dst, 0, bytes, compute_), "CUDA backend: zero");
}

void DeviceBackend::synchronize() { check_cuda(cudaStreamSynchronize(compute_), "CUDA backend: synchronize"); }

Tensor DeviceBackend::scalar_slot(int index) {
  if (index < 0 || index >= kScalarSlots)
    fail("CUDA backend: scalar slot {} outside [0, {})", index, kScalarSlots);
  if (scalars_ == nullptr) scalars_ = static_cast<double*>(allocate(kScalarSlots * sizeof(double)));
  return Tensor(scalars_ + index, DType::F64, Shape{1}, Device::Cuda);
}

void* DeviceBackend::workspace(std::size_t bytes) {
  if (bytes <= workspace_bytes_) return workspace_;
  if (workspace_) check_cuda(cudaFree(workspace_), "CUDA backend: growing the workspace");
  workspace_ = nullptr;
  workspace_bytes_ = 0;
  workspace_ = allocate(bytes);
  workspace_bytes_ = bytes;
  return workspace_;
}

void* DeviceBackend::stage_table(const void* host, std::size_t bytes) {
  const auto* begin = static_cast<const unsigned char*>(host);
  for (auto it = tables_.begin(); it != tables_.end(); ++it) {
    if (it->content.size() != bytes || std::memcmp(it->content.data(), host, bytes) != 0) continue;
    std::rotate(it, it + 1, tables_.end());  // now the most recently used
    return tables_.back().device;
  }
  if (tables_.size() == kCachedTables) {
    cudaFree(tables_.front().device);  // synchronises the device: no queued kernel still reads it
    tables_.erase(tables_.begin());
  }
  StagedTable table{std::vector<unsigned char>(begin, begin + bytes), allocate(bytes)};
  copy_to_device(table.device, table.content.data(), bytes);
  tables_.push_back(std::move(table));
  return tables_.back().device;
}

// ---- pinned uploads --------------------------------------------------------------------------

namespace {

class PinnedUploadBuffer final : public cuda_backend::CudaBackend::PinnedUpload {
 public:
  explicit PinnedUploadBuffer(cudaStream_t stream) : stream_(stream) {
    check_cuda(cudaEventCreateWithFlags(&copied_, cudaEventDisableTiming), "CUDA backend: creating an upload event");
  }
  ~PinnedUploadBuffer() override {
    if (in_flight_) (void)cudaEventSynchronize(copied_);
    if (buffer_) cudaFreeHost(buffer_);
    cudaEventDestroy(copied_);
  }
  PinnedUploadBuffer(const PinnedUploadBuffer&) = delete;
  PinnedUploadBuffer& operator=(const PinnedUploadBuffer&) = delete;

  void* host(std::size_t bytes) override {
    if (in_flight_) check_cuda(cudaEventSynchronize(copied_), "CUDA backend: waiting for an upload");
    in_flight_ = false;
    if (bytes > capacity_) {
      if (buffer_) check_cuda(cudaFreeHost(buffer_), "CUDA backend: freeing pinned memory");
      buffer_ = nullptr;
      capacity_ = 0;
      check_cuda(cudaMallocHost(&buffer_, bytes), "CUDA backend: allocating pinned host memory");
      capacity_ = bytes;
    }
    return buffer_;
  }

  void upload(void* device_dst, std::size_t bytes) override {
    if (bytes > capacity_) fail("CUDA backend: an upload of {} bytes from a pinned buffer of {}", bytes, capacity_);
    if (bytes == 0) return;
    check_cuda(cudaMemcpyAsync(device_dst, buffer_, bytes, cudaMemcpyHostToDevice, stream_),
               "CUDA backend: upload from pinned memory");
    check_cuda(cudaEventRecord(copied_, stream_), "CUDA backend: recording an upload");
    in_flight_ = true;
  }

 private:
  cudaStream_t stream_;
  cudaEvent_t copied_ = nullptr;
  void* buffer_ = nullptr;
  std::size_t capacity_ = 0;
  bool in_flight_ = false;
};

}  // namespace

std::unique_ptr<cuda_backend::CudaBackend::PinnedUpload> DeviceBackend::make_pinned_upload() {
  return std::make_unique<PinnedUploadBuffer>(compute_);
}

// ---- registration --------------------------------------------------------------------------

#if KILN_CUDA_EMULATED

namespace {

cuda_backend::CudaBackend& emulated_backend(const std::string& /*setting*/) {
  static DeviceBackend backend("emulated device (kernels/cuda/emulation: correct, not fast)");
  return backend;
}

}  // namespace

void register_emulated_backend() {
  cuda_backend::register_cuda_backend(cuda_backend::BackendKind::Emulated, &emulated_backend);
}

#else

namespace {

// This process's place among the ranks its launcher started on this node (0 without one).
int node_local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK"})
    if (const char* value = std::getenv(name); value != nullptr && *value != '\0') return std::atoi(value);
  return 0;
}

// One GPU per rank: the node's k-th rank takes GPU k. A launcher that gives each rank one
// visible GPU (CUDA_VISIBLE_DEVICES per task) leaves one device to take.
int gpu_of_this_rank(int count, const std::string& setting) {
  const int local = node_local_rank();
  if (local < count) return local;
  if (count == 1 && std::getenv("CUDA_VISIBLE_DEVICES") != nullptr) return 0;
  fail("{}: this process is rank {} of its node, but the node has {} GPU(s): kiln trains one rank per GPU. Fix: "
       "launch at most {} rank(s) per node (mpirun --map-by ppr:{}:node, or SLURM --ntasks-per-node={})",
       setting, local, count, count, count, count);
}

// This rank's GPU, if it is one kiln's kernels were built for (bf16 tensor cores: sm_80 and up).
std::string usable_gpu_name(const std::string& setting) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    const std::string why = status != cudaSuccess ? cudaGetErrorString(status) : "the driver reports no GPU";
    (void)cudaGetLastError();
    fail("{}: no usable CUDA device ({}). Fix: run on a machine with an NVIDIA GPU and its driver, or use "
         "train.device: cpu",
         setting, why);
  }
  const int gpu = gpu_of_this_rank(count, setting);
  cudaDeviceProp properties{};
  check_cuda(cudaGetDeviceProperties(&properties, gpu), "CUDA backend: reading the device properties");
  if (properties.major < 8)
    fail("{}: {} has compute capability {}.{}; kiln's CUDA kernels need 8.0 or newer (bf16 tensor cores: "
         "A100, H100, H200). Fix: use a newer GPU or train.device: cpu",
         setting, properties.name, properties.major, properties.minor);
  check_cuda(cudaSetDevice(gpu), "CUDA backend: cudaSetDevice");
  return fmt::format("{} (GPU {}, sm_{}{}, {:.1f} GiB)", properties.name, gpu, properties.major, properties.minor,
                     static_cast<double>(properties.totalGlobalMem) / (1 << 30));
}

cuda_backend::CudaBackend& gpu_backend(const std::string& setting) {
  static DeviceBackend backend(usable_gpu_name(setting));
  return backend;
}

}  // namespace

void register_gpu_backend() { cuda_backend::register_cuda_backend(cuda_backend::BackendKind::Gpu, &gpu_backend); }

#endif

}  // namespace kiln::KILN_CUDA_NS
