#pragma once
// The CUDA backend's host side (kernels/cuda/backend.hpp), compiled twice from this source:
// against the CUDA runtime and the nvcc-built kernels (kiln::cuda, the GPU), and under the
// emulated device (kiln::cuda_emu). Everything here runs on the host and only launches
// kernels, library calls and copies on the compute stream.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/backend.hpp"
#include "kernels/cuda/cuda_compat.cuh"
#include "kernels/cuda/cudnn_sdpa.hpp"
#include "kernels/cuda/gemm.hpp"

namespace kiln::KILN_CUDA_NS {

struct RaggedBatch;  // a packed batch in cuDNN's ragged layout (attention_ops.cpp)

class DeviceBackend final : public cuda_backend::CudaBackend {
 public:
  explicit DeviceBackend(std::string device_name);
  ~DeviceBackend() override;
  DeviceBackend(const DeviceBackend&) = delete;
  DeviceBackend& operator=(const DeviceBackend&) = delete;

  cuda_backend::BackendKind kind() const override;
  std::string device_name() const override { return device_name_; }

  void* allocate(std::size_t bytes) override;
  void free(void* memory) noexcept override;
  cuda_backend::DeviceMemory memory() const override;

  void copy_to_device(void* device_dst, const void* host_src, std::size_t bytes) override;
  void copy_to_host(void* host_dst, const void* device_src, std::size_t bytes) override;
  void copy_on_device(void* dst, const void* src, std::size_t bytes) override;
  void zero(void* device_dst, std::size_t bytes) override;
  void synchronize() override;
  Tensor scalar_slot(int index) override;
  std::unique_ptr<PinnedUpload> make_pinned_upload() override;

  void convert(Tensor dst, Tensor src) override;
  void add(Tensor out, Tensor a, Tensor b) override;
  void add_to(Tensor dst, Tensor src) override;
  void gelu_forward(Tensor y, Tensor x) override;
  void gelu_backward(Tensor dx, Tensor dy, Tensor x, bool accumulate_dx) override;
  void layernorm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b, double eps) override;
  void layernorm_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, Tensor mean, Tensor rstd,
                          bool accumulate_dx) override;
  void rmsnorm_forward(Tensor y, Tensor rstd, Tensor x, Tensor w, double eps) override;
  void rmsnorm_backward(Tensor dx, Tensor dw, Tensor dy, Tensor x, Tensor w, Tensor rstd,
                        bool accumulate_dx) override;
  void swiglu_forward(Tensor out, Tensor gate_up) override;
  void swiglu_backward(Tensor dgate_up, Tensor dout, Tensor gate_up) override;
  void rope(Tensor y, Tensor x, Tensor positions, const double* inv_freq, int direction) override;
  void embedding_forward(Tensor out, Tensor ids, Tensor table, std::int64_t first_id, bool accumulate) override;
  void embedding_backward(Tensor dtable, Tensor dout, Tensor ids, std::int64_t first_id) override;
  void cross_entropy_forward(Tensor losses, Tensor lse, Tensor loss_sum, Tensor logits, Tensor targets, Tensor mask,
                             std::int64_t valid) override;
  void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor targets, Tensor lse, Tensor mask,
                              std::int64_t valid, std::int64_t first_id, double grad_scale) override;
  void cross_entropy_local_max(Tensor row_max, Tensor logits, std::int64_t valid) override;
  void cross_entropy_local_sums(Tensor sum_exp, Tensor target_logit, Tensor logits, Tensor targets, Tensor row_max,
                                std::int64_t valid, std::int64_t first_id) override;
  void cross_entropy_finish(Tensor losses, Tensor lse, Tensor loss_sum, Tensor row_max, Tensor sum_exp,
                            Tensor target_logit, Tensor mask) override;
  void attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor doc_ids, bool causal,
                         double scale, bool warpgroup_mma) override;
  void attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out,
                          Tensor lse, Tensor doc_ids, bool causal, double scale, bool warpgroup_mma) override;
  void merge_attention(Tensor out, Tensor lse, Tensor part, Tensor part_lse) override;
  void cudnn_attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor doc_ids,
                               const ops::DocumentRuns& documents, bool causal, double scale) override;
  void cudnn_attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out,
                                Tensor lse, Tensor doc_ids, const ops::DocumentRuns& documents, bool causal,
                                double scale) override;
  void adamw_step_segments(Tensor params, Tensor grads, Tensor m, Tensor v, const AdamWSegmentView* segments,
                           int count, const AdamWHyperView& hyper, Tensor working_copy) override;
  void matmul(cuda_backend::RowMatrix c, cuda_backend::RowMatrix a, cuda_backend::RowMatrix b, bool transpose_a,
              bool transpose_b, double alpha, double beta, const void* bias) override;
  void add_column_sums(Tensor sums, cuda_backend::RowMatrix x) override;
  void sum_of_squares(Tensor total, Tensor x, const std::int64_t* range_offsets, const std::int64_t* range_lengths,
                      int range_count) override;

  cuda_backend::CollectivesId new_collectives_id() override;
  std::unique_ptr<cuda_backend::DeviceCollectives> make_collectives(const cuda_backend::CollectivesId& id,
                                                                    cuda_backend::HostTransport& group) override;

  cudaStream_t compute_stream() const { return compute_; }

 private:
  // Scratch for kernels that need it (norm weight-gradient partials, reduction partials):
  // grows to the largest request and is then reused, so only the first steps allocate.
  void* workspace(std::size_t bytes);
  // Small host arrays a kernel reads from device memory (segment and range tables, RoPE
  // frequencies): each distinct content is uploaded once and kept (the few most recent), since
  // a step passes the same tables every time.
  void* stage_table(const void* host, std::size_t bytes);
  // The GEMM context (cuBLASLt handle, algorithm cache, workspace), made on first use.
  GemmContext& gemm();
#if !KILN_CUDA_EMULATED
  // cuDNN's handle, graphs and workspace (attention_ops.cpp), made on first use.
  cudnn_sdpa::Runner& cudnn();
  std::unique_ptr<cudnn_sdpa::Runner> cudnn_;
#endif
  // A batch's ragged lengths and offsets as one device table (attention_ops.cpp).
  cudnn_sdpa::RaggedTables stage_ragged(const RaggedBatch& ragged);
  // A device vector of at least `count` ones of `dtype` (the left operand of a column sum).
  const void* ones(DType dtype, std::int64_t count);

  // The stream data-parallel collectives overlap the kernels on (collectives_ops.cpp).
  cudaStream_t communication_stream();

  std::string device_name_;
  cudaStream_t compute_ = nullptr;
  cudaStream_t communication_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  struct StagedTable {
    std::vector<unsigned char> content;
    void* device = nullptr;
  };
  std::vector<StagedTable> tables_;  // least recently used first
  // cuDNN attention's ragged description of the current micro-batch (stage_ragged).
  void* ragged_table_ = nullptr;
  std::size_t ragged_capacity_ = 0;
  std::vector<unsigned char> ragged_content_;
  double* scalars_ = nullptr;  // kScalarSlots doubles
  std::unique_ptr<GemmContext> gemm_;
  void* ones_f32_ = nullptr;
  void* ones_bf16_ = nullptr;
  std::int64_t ones_count_ = 0;
};

// Throws kiln::Error "<what>: <CUDA error name> (<text>)" unless status is cudaSuccess.
void check_cuda(cudaError_t status, const char* what);

}  // namespace kiln::KILN_CUDA_NS
