#pragma once
// The CUDA backend as kiln::ops sees it (DESIGN.md §4, §7): plain C++, no CUDA headers.
//
// kiln::ops checks every argument once (op_args.hpp) and then, for tensors on Device::Cuda,
// calls the active CudaBackend instead of a kernels/cpu/ kernel. Two implementations exist,
// both built from the same host code (kernels/cuda/host/*.cpp, compiled twice like the .cu
// kernels):
//   - kiln::cuda     — the real GPU (CUDA runtime, the nvcc-built kernels, cuBLASLt), in
//                      builds with the CUDA toolkit (KILN_WITH_CUDA);
//   - kiln::cuda_emu — the emulated device (kernels/cuda/emulation), in builds with
//                      KILN_CUDA_EMULATION; test infrastructure, chosen only on request.
// One of them is installed per process (select_cuda_backend); Device::Cuda tensors live in
// its memory. Every call is ordered on the backend's compute stream; only read-backs to the
// host (copy_to_host) wait for it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/cuda/collectives.hpp"
#include "kernels/memory/allocator.hpp"
#include "kernels/ops/attention.hpp"
#include "kernels/tensor.hpp"

namespace kiln::cuda_backend {

// A row-major matrix in device memory: `rows` rows of `cols` elements, `stride` elements apart
// (a view of a [..., cols] tensor whose leading dims flatten to rows). data null = absent.
struct RowMatrix {
  void* data = nullptr;
  DType dtype = DType::F32;
  std::int64_t rows = 0, cols = 0, stride = 0;
};

// Which device `train.device: cuda` means in this process.
enum class BackendKind { Gpu, Emulated };

struct DeviceMemory {
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
};

class CudaBackend {
 public:
  virtual ~CudaBackend() = default;

  virtual BackendKind kind() const = 0;
  virtual std::string device_name() const = 0;  // "NVIDIA H200 (sm_90, 139.8 GiB)", "emulated device"

  // ---- memory (what CudaAllocator builds on) ------------------------------------------------
  // `bytes` of device memory, zero-filled; out of memory is a kiln::Error that says how much
  // was asked and how much is free (the caller adds which recipe keys lower it).
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void free(void* memory) noexcept = 0;
  virtual DeviceMemory memory() const = 0;

  // ---- copies -------------------------------------------------------------------------------
  // Byte copies between this device and the host (or within the device), ordered on the
  // compute stream. copy_to_device returns once host_src may be reused (a pageable source is
  // staged by the driver then, without waiting for the queued work); copy_to_host returns when
  // the bytes are on the host.
  virtual void copy_to_device(void* device_dst, const void* host_src, std::size_t bytes) = 0;
  virtual void copy_to_host(void* host_dst, const void* device_src, std::size_t bytes) = 0;
  virtual void copy_on_device(void* dst, const void* src, std::size_t bytes) = 0;
  virtual void zero(void* device_dst, std::size_t bytes) = 0;
  virtual void synchronize() = 0;

  // A page-locked host buffer for uploads that overlap the queued work (a micro-batch's
  // inputs): fill host(bytes), then upload() enqueues the copy and returns at once. host()
  // waits until the previous upload from the buffer has been copied, so keep two and
  // alternate to never wait.
  class PinnedUpload {
   public:
    virtual ~PinnedUpload() = default;
    virtual void* host(std::size_t bytes) = 0;  // at least `bytes`, writable now
    virtual void upload(void* device_dst, std::size_t bytes) = 0;
  };
  virtual std::unique_ptr<PinnedUpload> make_pinned_upload() = 0;
  // A device f64 [1] for one of a step's scalar results (gradient norm, finite flag) that the
  // host reads back: kept for the backend's lifetime, so a step allocates nothing for them.
  static constexpr int kScalarSlots = 8;
  virtual Tensor scalar_slot(int index) = 0;

  // ---- collectives between GPUs (kernels/cuda/collectives.hpp) -------------------------------
  // One rank of a group makes the id and hands it to the others over their host group; then
  // every rank of the group calls make_collectives with it and the group's host transport.
  // The communicator's work runs on this backend's compute stream or on its one
  // communication stream, created with the first communicator.
  virtual CollectivesId new_collectives_id() = 0;
  virtual std::unique_ptr<DeviceCollectives> make_collectives(const CollectivesId& id, HostTransport& group) = 0;

  // ---- ops (arguments already checked by kiln::ops; every tensor on this device) ----------
  // dst = src for tensors of the same shape: equal dtypes copy between any strides (a flat
  // copy when both are contiguous); f32 <-> bf16 convert between contiguous tensors.
  virtual void convert(Tensor dst, Tensor src) = 0;
  virtual void add(Tensor out, Tensor a, Tensor b) = 0;
  virtual void add_to(Tensor dst, Tensor src) = 0;  // also f64 (loss sums)
  virtual void gelu_forward(Tensor y, Tensor x) = 0;
  virtual void gelu_backward(Tensor dx, Tensor dy, Tensor x, bool accumulate_dx) = 0;
  virtual void layernorm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b, double eps) = 0;
  virtual void layernorm_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, Tensor mean,
                                  Tensor rstd, bool accumulate_dx) = 0;
  virtual void rmsnorm_forward(Tensor y, Tensor rstd, Tensor x, Tensor w, double eps) = 0;
  virtual void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, Tensor rstd,
                                bool accumulate_dx) = 0;
  // gate_up [rows, 2F] (gate = columns [0, F), up = [F, 2F), the fused GEMM output); out,
  // dout [rows, F]; dgate_up [rows, 2F].
  virtual void swiglu_forward(Tensor out, Tensor gate_up) = 0;
  virtual void swiglu_backward(Tensor dgate_up, Tensor dout, Tensor gate_up) = 0;
  // y, x [B, T, H, Dh] strided (unit inner stride), positions i32 [B * T], inv_freq [Dh / 2]
  // host f64 (ops::rope_inv_freq); direction +1 rotates (forward), -1 undoes it (backward).
  virtual void rope(Tensor y, Tensor x, Tensor positions, const double* inv_freq, int direction) = 0;
  // ids i32 [rows], table [V, C] (rows first_id .. first_id + V - 1), out [rows, C]; ids
  // outside the table give zero rows (the strict range check is the host's, in MicroBatch).
  // accumulate: out += the rows. Backward: dtable f32 [V, C] += the rows of dout, deterministic.
  virtual void embedding_forward(Tensor out, Tensor ids, Tensor table, std::int64_t first_id, bool accumulate) = 0;
  virtual void embedding_backward(Tensor dtable, Tensor dout, Tensor ids, std::int64_t first_id) = 0;
  // logits [rows, V] (f32 or bf16), targets i32 [rows], mask u8 [rows] or undefined, lse and
  // losses f32 [rows] (losses may be undefined), loss_sum f64 [2]. The targets of counted rows
  // must already be in [0, valid) (MicroBatch checks them on the host; a kernel cannot raise).
  virtual void cross_entropy_forward(Tensor losses, Tensor lse, Tensor loss_sum, Tensor logits, Tensor targets,
                                     Tensor mask, std::int64_t valid) = 0;
  virtual void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor targets, Tensor lse, Tensor mask,
                                      std::int64_t valid, std::int64_t first_id, double grad_scale) = 0;
  // Vocab-parallel statistics (ops::cross_entropy_local_max / _local_sums / _finish): row_max,
  // sum_exp, target_logit, lse, losses f32 [rows] (losses may be undefined), loss_sum f64 [2].
  virtual void cross_entropy_local_max(Tensor row_max, Tensor logits, std::int64_t valid) = 0;
  virtual void cross_entropy_local_sums(Tensor sum_exp, Tensor target_logit, Tensor logits, Tensor targets,
                                        Tensor row_max, std::int64_t valid, std::int64_t first_id) = 0;
  virtual void cross_entropy_finish(Tensor losses, Tensor lse, Tensor loss_sum, Tensor row_max, Tensor sum_exp,
                                    Tensor target_logit, Tensor mask) = 0;
  // Attention with ops::flash_attention_forward/backward's semantics (kernels/cuda/attention.hpp):
  // q, out, dq, dout [B, Tq, Hq, D] and k, v, dk, dv [B, Tk, Hkv, D] of one storage dtype,
  // strided heads with unit inner stride; lse f32 [B, Hq, Tq]; doc_ids i32 [B, Tk] or
  // undefined. dq, dk, dv are overwritten. warpgroup_mma: the tensor-core kernels are the wgmma
  // ones (kernels/cuda/flash_attention.hpp; kiln::Error unless built for sm_90a).
  virtual void attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor doc_ids, bool causal,
                                 double scale, bool warpgroup_mma) = 0;
  virtual void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                                  Tensor out, Tensor lse, Tensor doc_ids, bool causal, double scale,
                                  bool warpgroup_mma) = 0;
  // ops::merge_attention (ring attention): out/part f32 [B, T, H, D], lse/part_lse f32 [B, H, T],
  // all strided with unit stride over D.
  virtual void merge_attention(Tensor out, Tensor lse, Tensor part, Tensor part_lse) = 0;
  // The same through cuDNN's fused SDPA (kernels/cuda/cudnn_sdpa.hpp), bf16 only, Tq == Tk;
  // `documents` are doc_ids' runs (already checked to tile [B, T]); lse is token-major
  // (ops::AttentionOptions). On the emulated device a host implementation over the same
  // ragged offsets computes the result after cuDNN's frontend has validated the graph.
  virtual void cudnn_attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor doc_ids,
                                       const ops::DocumentRuns& documents, bool causal, double scale) = 0;
  virtual void cudnn_attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                                        Tensor out, Tensor lse, Tensor doc_ids, const ops::DocumentRuns& documents,
                                        bool causal, double scale) = 0;
  // One multi-tensor AdamW launch (ops::adamw_step_segments): params f32 masters [P],
  // grads/m/v f32 [S], working_copy bf16 [P] or undefined; segments already range-checked.
  struct AdamWSegmentView {
    std::int64_t param_offset, state_offset, length;
    bool weight_decay;
  };
  struct AdamWHyperView {
    double lr, beta1, beta2, eps, weight_decay;
    std::int64_t step;
    double grad_scale;
  };
  virtual void adamw_step_segments(Tensor params, Tensor grads, Tensor m, Tensor v, const AdamWSegmentView* segments,
                                   int count, const AdamWHyperView& hyper, Tensor working_copy) = 0;
  // c = alpha op(a) op(b) + beta c (+ bias [c.cols] of c's dtype on every row), op(x) = x or
  // x^T (kernels/cuda/gemm.hpp: cuBLASLt on the GPU; f32 x f32 or bf16 x bf16 with fp32
  // accumulation). beta = 0 ignores c's old contents.
  virtual void matmul(RowMatrix c, RowMatrix a, RowMatrix b, bool transpose_a, bool transpose_b, double alpha,
                      double beta, const void* bias) = 0;
  // sums f32 [x.cols] += the column sums of x (a bias gradient), deterministic.
  virtual void add_column_sums(Tensor sums, RowMatrix x) = 0;
  // flat [N] views; ranges as in ops::sum_of_squares; total f64 [1].
  virtual void sum_of_squares(Tensor total, Tensor x, const std::int64_t* range_offsets,
                              const std::int64_t* range_lengths, int range_count) = 0;
};

// The backend Device::Cuda tensors use; throws kiln::Error naming `who` when none is installed
// (the process has not selected a CUDA device).
CudaBackend& active_backend(const char* who);
bool has_active_backend();

// Installs the backend of `kind`. Gpu: needs a build with CUDA and a device of compute
// capability 8.0 or newer; Emulated: needs a build with KILN_CUDA_EMULATION. Otherwise a
// kiln::Error that names `setting` (e.g. "train.device: cuda") and the fix. Selecting the
// kind that is already active does nothing; switching kinds is refused while device memory
// is allocated.
void select_cuda_backend(BackendKind kind, const std::string& setting);
// The kind `train.device: cuda` means: Emulated when the environment says
// KILN_CUDA_DEVICE=emulated (test builds), else Gpu.
BackendKind requested_backend_kind();

// Device memory from the active backend, for DeviceBuffer and Arena (memory::Allocator).
memory::Allocator& cuda_allocator();

}  // namespace kiln::cuda_backend
