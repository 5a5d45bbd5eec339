#pragma once
// cuDNN's fused scaled-dot-product attention (`train.attention: cudnn`), behind one narrow
// interface (DESIGN.md §7) in plain C++: no CUDA or cuDNN header here, so the emulated device's
// host code includes it too.
//
// kiln's packed batches become cuDNN's ragged ("THD") layout: every document (a run of equal
// doc_ids in one row) is one cuDNN sequence, found in the [B, T, H, D] tensors through a
// per-tensor ragged offset (elements from the tensor's base to the document's first token)
// and a sequence length. So attention restarts at every document, as kiln's kernels do, and
// no padding is computed. The graph's batch (`sequences`) and sequence length (`max_len`) are
// rounded up (SdpaPlan) so a few graphs serve every batch; the unused sequences have length 0.
//   q, o, dq, do   [sequences, heads, max_len, dim]    at their ragged offsets, strided
//   k, v, dk, dv   [sequences, kv_heads, max_len, dim]  (unit stride along dim)
//   stats          [sequences, heads, max_len, 1] f32, token-major: (token, head) at
//                  offset + position * heads + head (the log-sum-exp of the scaled scores)
//   sequence_lengths i32 [sequences]; each ragged offset i64 [sequences + 1]
// bf16 storage, f32 softmax and accumulation; the backward runs cuDNN's deterministic
// algorithm, so a GPU run resumes bit for bit.
//
// Built on NVIDIA's cuDNN frontend (header only, scripts/fetch_cudnn_frontend.sh) with
// libcudnn.so.9 loaded at first use: a machine without cuDNN runs every other kiln feature,
// and asking for cuDNN attention there is a clear error.
#include <cstdint>
#include <memory>
#include <string>

namespace kiln::cudnn_sdpa {

// Element strides of one tensor, as cuDNN's dims [sequence, head, position, dim] see it.
struct TensorLayout {
  std::int64_t head_stride = 0, position_stride = 0;
};

struct Problem {
  std::int64_t sequences = 0, max_len = 0;  // the graph's batch and sequence length
  std::int64_t heads = 0, kv_heads = 0, dim = 0;
  bool causal = true;
  float scale = 1.0f;
  TensorLayout q, k, v, o;  // the backward's dq, dk, dv, do share them (check_problem)
};

// Whether this build has the cuDNN frontend and libcudnn.so.9 loads; otherwise `why` says
// what is missing and how to get it.
bool available(std::string* why = nullptr);
// "9.19.0" (the loaded library's version), or "not available (<why>)".
std::string library_version();

// Builds the frontend's forward or backward graph for `problem`, aimed at sm_90, and runs the
// frontend's own validation of it (host only: no GPU or handle needed). Throws kiln::Error
// "cudnn attention: <problem>" when cuDNN would refuse the graph. The emulated device calls it
// for every attention so CI checks the library's argument contract.
void validate_forward(const Problem& problem);
void validate_backward(const Problem& problem);

// The device copies of a batch's ragged description: sequence_lengths i32 [sequences] and
// each tensor's offsets i64 [sequences + 1] (the backward's gradients share their inputs').
struct RaggedTables {
  const void* sequence_lengths = nullptr;
  const void *q_offsets = nullptr, *k_offsets = nullptr, *v_offsets = nullptr, *o_offsets = nullptr,
             *stats_offsets = nullptr;
};

struct ForwardPointers {
  const void *q = nullptr, *k = nullptr, *v = nullptr;
  void *o = nullptr, *stats = nullptr;
  RaggedTables ragged;
};

struct BackwardPointers {
  const void *q = nullptr, *k = nullptr, *v = nullptr, *o = nullptr, *d_o = nullptr, *stats = nullptr;
  void *dq = nullptr, *dk = nullptr, *dv = nullptr;
  RaggedTables ragged;
};

// The GPU side: one cuDNN handle, the built graphs (one per problem), one workspace that
// grows to the largest graph's need. Only in builds with the CUDA toolkit; every call is on
// `stream` (a cudaStream_t).
class Runner {
 public:
  Runner();
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  void forward(const Problem& problem, const ForwardPointers& pointers, void* stream);
  void backward(const Problem& problem, const BackwardPointers& pointers, void* stream);
  std::size_t built_graphs() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace kiln::cudnn_sdpa
