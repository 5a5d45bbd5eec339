// CUDA backend: attention, kiln's kernels (kernels/cuda/attention.cu) or cuDNN's fused SDPA
// (kernels/cuda/cudnn_sdpa.hpp; on the emulated device a host implementation behind the
// frontend's validation).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include "kernels/cuda/attention.hpp"
#include "kernels/cuda/attention_merge.hpp"
#include "kernels/cuda/flash_attention.hpp"
#include "kernels/cuda/host/device_backend.hpp"
#include "kernels/cuda/host/tensor_pointers.hpp"

namespace kiln::KILN_CUDA_NS {

namespace {

// A [B, T, H, D] view as the kernels take it: any strides but a unit inner one.
template <class T>
HeadTensor<T> head_tensor(const char* op, const char* name, const Tensor& x) {
  if (x.stride(3) != 1)
    fail("ops::{}: `{}` is {}; the CUDA attention kernel needs the head dim contiguous (stride 1)", op, name, x.str());
  return {static_cast<T*>(x.ptr), x.stride(0), x.stride(1), x.stride(2)};
}

const std::int32_t* document_ids(const char* op, const Tensor& doc_ids) {
  if (!doc_ids.defined()) return nullptr;
  if (doc_ids.dtype != DType::I32 || !doc_ids.is_contiguous())
    fail("ops::{}: `doc_ids` is {}; on the CUDA device document ids are contiguous i32", op, doc_ids.str());
  return device_pointer<const std::int32_t>(doc_ids);
}

AttentionShape attention_shape(const Tensor& q, const Tensor& k, bool causal, double scale) {
  return {q.size(0), q.size(1), k.size(1), q.size(2), k.size(2), q.size(3), causal, static_cast<float>(scale)};
}

// The wgmma kernels for one call, then the process-wide choice as it was (tests and benchmarks
// set that choice directly).
class WarpgroupMmaKernels {
 public:
  explicit WarpgroupMmaKernels(bool wanted) : previous_(flash_attention_kernels()), wanted_(wanted) {
    if (wanted_) set_flash_attention_kernels(FlashKernels::wgmma);
  }
  ~WarpgroupMmaKernels() {
    if (wanted_) set_flash_attention_kernels(previous_);
  }
  WarpgroupMmaKernels(const WarpgroupMmaKernels&) = delete;
  WarpgroupMmaKernels& operator=(const WarpgroupMmaKernels&) = delete;

 private:
  FlashKernels previous_;
  bool wanted_;
};

}  // namespace

void DeviceBackend::attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor doc_ids,
                                      bool causal, double scale, bool warpgroup_mma) {
  constexpr const char* op = "flash_attention_forward";
  float* const lse_data = f32_pointer(op, "lse", lse);
  const std::int32_t* const docs = document_ids(op, doc_ids);
  const WarpgroupMmaKernels kernel_choice(warpgroup_mma);
  dispatch_storage(op, q, [&]<class T>(T) {
    const AttentionForward<T> args{head_tensor<T>(op, "out", out), lse_data, head_tensor<const T>(op, "q", q),
                                   head_tensor<const T>(op, "k", k), head_tensor<const T>(op, "v", v), docs};
    KILN_CUDA_NS::attention_forward(attention_shape(q, k, causal, scale), args, compute_);
  });
}

void DeviceBackend::attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v,
                                       Tensor out, Tensor lse, Tensor doc_ids, bool causal, double scale,
                                       bool warpgroup_mma) {
  constexpr const char* op = "flash_attention_backward";
  const float* const lse_data = f32_pointer(op, "lse", lse);
  const std::int32_t* const docs = document_ids(op, doc_ids);
  const WarpgroupMmaKernels kernel_choice(warpgroup_mma);
  dispatch_storage(op, q, [&]<class T>(T) {
    const AttentionBackward<T> args{head_tensor<T>(op, "dq", dq),          head_tensor<T>(op, "dk", dk),
                                    head_tensor<T>(op, "dv", dv),          head_tensor<const T>(op, "dout", dout),
                                    head_tensor<const T>(op, "q", q),      head_tensor<const T>(op, "k", k),
                                    head_tensor<const T>(op, "v", v),      head_tensor<const T>(op, "out", out),
                                    lse_data,                              docs};
    KILN_CUDA_NS::attention_backward(attention_shape(q, k, causal, scale), args, compute_);
  });
}

void DeviceBackend::merge_attention(Tensor out, Tensor lse, Tensor part, Tensor part_lse) {
  constexpr const char* op = "merge_attention";
  using Named = std::pair<const char*, Tensor>;
  MergeRows rows;
  rows.batch = out.size(0), rows.seq = out.size(1), rows.heads = out.size(2), rows.dim = out.size(3);
  for (int i = 0; i < 3; ++i) {
    rows.out_strides[i] = out.stride(i), rows.part_strides[i] = part.stride(i);
    rows.lse_strides[i] = lse.stride(i), rows.part_lse_strides[i] = part_lse.stride(i);
  }
  for (const auto& [name, x] : {Named{"out", out}, Named{"lse", lse}, Named{"part", part}, Named{"part_lse", part_lse}})
    if (x.dtype != DType::F32) fail("ops::{}: `{}` is {}; the device merges f32", op, name, x.str());
  // Strided views (a row range of the running output): the kernel takes the strides.
  KILN_CUDA_NS::merge_attention(device_pointer<float>(out), device_pointer<float>(lse), device_pointer<const float>(part),
                                device_pointer<const float>(part_lse), rows, compute_);
}

}  // namespace kiln::KILN_CUDA_NS

// ---- cuDNN's fused attention (kernels/cuda/cudnn_sdpa.hpp) ----------------------------------

namespace kiln::KILN_CUDA_NS {

// A packed batch in cuDNN's ragged layout: the graph's rounded dims, each document's length,
// and each tensor's ragged offsets (elements from its base to the document's first token).
struct RaggedBatch {
  cudnn_sdpa::Problem problem;
  std::vector<std::int32_t> lengths;            // [sequences]; the unused ones 0
  std::vector<std::int64_t> q, k, v, o, stats;  // [sequences + 1]
};

namespace {

cudnn_sdpa::TensorLayout layout_of(const Tensor& x) { return {x.stride(2), x.stride(1)}; }

// Offsets of a tensor whose rows lie `row_stride` and tokens `token_stride` elements apart.
// The unused sequences start where the last document ends, so the offsets never decrease.
std::vector<std::int64_t> ragged_offsets(const ops::DocumentRuns& documents, std::int64_t sequences,
                                         std::int64_t row_stride, std::int64_t token_stride) {
  std::vector<std::int64_t> offsets;
  offsets.reserve(static_cast<std::size_t>(sequences + 1));
  for (const ops::DocumentRun& run : documents) offsets.push_back(run.row * row_stride + run.start * token_stride);
  const ops::DocumentRun& last = documents.back();
  offsets.resize(static_cast<std::size_t>(sequences + 1), last.row * row_stride + (last.start + last.length) * token_stride);
  return offsets;
}

// The graph's batch and length are powers of two (capped at T): a handful of graphs serve
// every mix of documents, each built once.
RaggedBatch ragged_batch(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                         const ops::DocumentRuns& documents, bool causal, double scale) {
  std::int64_t longest = 1;
  for (const ops::DocumentRun& run : documents) longest = std::max(longest, run.length);
  const std::int64_t seq_len = q.size(1), heads = q.size(2);
  RaggedBatch ragged;
  ragged.problem.sequences = static_cast<std::int64_t>(std::bit_ceil(documents.size()));
  ragged.problem.max_len = std::min(seq_len, static_cast<std::int64_t>(std::bit_ceil(static_cast<std::uint64_t>(longest))));
  ragged.problem.heads = heads;
  ragged.problem.kv_heads = k.size(2);
  ragged.problem.dim = q.size(3);
  ragged.problem.causal = causal;
  ragged.problem.scale = static_cast<float>(scale);
  ragged.problem.q = layout_of(q);
  ragged.problem.k = layout_of(k);
  ragged.problem.v = layout_of(v);
  ragged.problem.o = layout_of(out);
  const std::int64_t sequences = ragged.problem.sequences;
  for (const ops::DocumentRun& run : documents) ragged.lengths.push_back(static_cast<std::int32_t>(run.length));
  ragged.lengths.resize(static_cast<std::size_t>(sequences), 0);
  ragged.q = ragged_offsets(documents, sequences, q.stride(0), q.stride(1));
  ragged.k = ragged_offsets(documents, sequences, k.stride(0), k.stride(1));
  ragged.v = ragged_offsets(documents, sequences, v.stride(0), v.stride(1));
  ragged.o = ragged_offsets(documents, sequences, out.stride(0), out.stride(1));
  ragged.stats = ragged_offsets(documents, sequences, seq_len * heads, heads);
  return ragged;
}

// The backward's gradients share their inputs' offsets: same strides required.
void require_same_layout(const char* op, const char* gradient, const Tensor& g, const char* input, const Tensor& x) {
  if (g.stride(0) != x.stride(0) || g.stride(1) != x.stride(1) || g.stride(2) != x.stride(2))
    fail("ops::{}: cuDNN attention needs `{}` {} laid out like `{}` {}", op, gradient, g.str(), input, x.str());
}

#if KILN_CUDA_EMULATED

using Named = std::pair<const char*, Tensor>;

// What cuDNN's fused attention demands of the tensors themselves (its frontend checks the
// graph): bf16 device memory, 16-byte aligned rows and heads, unit stride along the head dim.
void check_cudnn_tensor(const char* op, const char* name, const Tensor& x) {
  if (x.dtype != DType::BF16) fail("ops::{}: cuDNN attention takes bf16; `{}` is {}", op, name, x.str());
  if (x.stride(3) != 1) fail("ops::{}: cuDNN attention needs `{}` contiguous along the head dim ({})", op, name, x.str());
  if (reinterpret_cast<std::uintptr_t>(x.ptr) % 16 != 0 || x.stride(1) % 8 != 0 || x.stride(2) % 8 != 0 ||
      x.stride(0) % 8 != 0)
    fail("ops::{}: cuDNN attention needs `{}` 16-byte aligned, with strides that are multiples of 8 ({})", op, name,
         x.str());
  const auto* last = static_cast<const std::uint16_t*>(x.ptr) + (x.size(0) - 1) * x.stride(0) +
                     (x.size(1) - 1) * x.stride(1) + (x.size(2) - 1) * x.stride(2) + x.size(3) - 1;
  if (!kiln::emu::is_device_pointer(x.ptr) || !kiln::emu::is_device_pointer(last))
    fail("ops::{}: `{}` is not (all) device memory: cuDNN reads it on the GPU", op, name);
}

// The documents must be doc_ids' runs: a mismatch would attend across a document boundary
// on the GPU without any error, so the emulated device reads the ids and compares.
void check_runs_match_ids(const char* op, const Tensor& doc_ids, const ops::DocumentRuns& documents,
                          std::int64_t rows, std::int64_t seq_len) {
  std::vector<std::int64_t> ids;
  if (doc_ids.defined()) {
    const auto* data = static_cast<const std::int32_t*>(doc_ids.ptr);
    ids.assign(data, data + rows * seq_len);
  }
  const ops::DocumentRuns expected = ops::document_runs(ids, rows, seq_len);
  const bool same = expected.size() == documents.size() &&
                    std::equal(expected.begin(), expected.end(), documents.begin(), [](const auto& a, const auto& b) {
                      return a.row == b.row && a.start == b.start && a.length == b.length;
                    });
  if (!same)
    fail("ops::{}: the {} document runs passed to cuDNN attention are not the {} runs of doc_ids", op,
         documents.size(), expected.size());
}

// cuDNN reads the lengths and offsets on the GPU too.
void check_ragged_tables(const char* op, const cudnn_sdpa::RaggedTables& t) {
  for (const void* table : {t.sequence_lengths, t.q_offsets, t.k_offsets, t.v_offsets, t.o_offsets, t.stats_offsets})
    if (!kiln::emu::is_device_pointer(table) || reinterpret_cast<std::uintptr_t>(table) % 16 != 0)
      fail("ops::{}: cuDNN's ragged lengths and offsets must be 16-byte aligned device memory", op);
}

// Everything of cuDNN's contract an attention call can break, but the graph (validated apart):
// each tensor, the runs against doc_ids (q gives [B, T]), and the ragged tables.
void check_cudnn_call(const char* op, std::initializer_list<Named> tensors, const Tensor& doc_ids,
                      const ops::DocumentRuns& documents, const cudnn_sdpa::RaggedTables& ragged) {
  const Tensor* q = nullptr;
  for (const auto& [name, tensor] : tensors) {
    check_cudnn_tensor(op, name, tensor);
    if (std::string_view(name) == "q") q = &tensor;
  }
  check_runs_match_ids(op, doc_ids, documents, q->size(0), q->size(1));
  check_ragged_tables(op, ragged);
}

float bf16_at(const void* base, std::int64_t index) {
  return kiln::to_float(kiln::BFloat16{static_cast<const std::uint16_t*>(base)[index]});
}
void store_bf16(void* base, std::int64_t index, double value) {
  static_cast<std::uint16_t*>(base)[index] = kiln::to_bfloat16(static_cast<float>(value)).bits;
}

// What the emulated library reads of the staged tables (device memory, as cuDNN reads them).
struct RaggedView {
  const cudnn_sdpa::Problem& p;
  const cudnn_sdpa::RaggedTables& tables;

  std::int64_t length(std::int64_t j) const { return static_cast<const std::int32_t*>(tables.sequence_lengths)[j]; }
  static std::int64_t at(const void* offsets, std::int64_t j) { return static_cast<const std::int64_t*>(offsets)[j]; }
  // Element (sequence j, head h, position s, 0) of each ragged tensor.
  std::int64_t q(std::int64_t j, std::int64_t h, std::int64_t s) const {
    return at(tables.q_offsets, j) + h * p.q.head_stride + s * p.q.position_stride;
  }
  std::int64_t k(std::int64_t j, std::int64_t h, std::int64_t s) const {
    return at(tables.k_offsets, j) + h * p.k.head_stride + s * p.k.position_stride;
  }
  std::int64_t v(std::int64_t j, std::int64_t h, std::int64_t s) const {
    return at(tables.v_offsets, j) + h * p.v.head_stride + s * p.v.position_stride;
  }
  std::int64_t o(std::int64_t j, std::int64_t h, std::int64_t s) const {
    return at(tables.o_offsets, j) + h * p.o.head_stride + s * p.o.position_stride;
  }
  std::int64_t stats(std::int64_t j, std::int64_t h, std::int64_t s) const {
    return at(tables.stats_offsets, j) + s * p.heads + h;
  }
};

double dot(const void* a, std::int64_t ai, const void* b, std::int64_t bi, std::int64_t dim) {
  double sum = 0;
  for (std::int64_t d = 0; d < dim; ++d) sum += double(bf16_at(a, ai + d)) * double(bf16_at(b, bi + d));
  return sum;
}

// The emulated library: attention within each ragged sequence, in double from the bf16
// inputs, reading and writing only through the device tables of lengths and offsets.
void ragged_attention_forward(const cudnn_sdpa::Problem& p, const cudnn_sdpa::ForwardPointers& x) {
  const RaggedView r{p, x.ragged};
  const std::int64_t group = p.heads / p.kv_heads;
  std::vector<double> scores;
  for (std::int64_t j = 0; j < p.sequences; ++j) {
    const std::int64_t length = r.length(j);
    for (std::int64_t h = 0; h < p.heads; ++h) {
      for (std::int64_t s = 0; s < length; ++s) {
        const std::int64_t visible = p.causal ? s + 1 : length;
        scores.assign(static_cast<std::size_t>(visible), 0.0);
        double top = -std::numeric_limits<double>::infinity();
        for (std::int64_t t = 0; t < visible; ++t) {
          scores[t] = p.scale * dot(x.q, r.q(j, h, s), x.k, r.k(j, h / group, t), p.dim);
          top = std::max(top, scores[t]);
        }
        double total = 0;
        for (double& score : scores) total += (score = std::exp(score - top));
        for (std::int64_t d = 0; d < p.dim; ++d) {
          double sum = 0;
          for (std::int64_t t = 0; t < visible; ++t) sum += scores[t] * bf16_at(x.v, r.v(j, h / group, t) + d);
          store_bf16(x.o, r.o(j, h, s) + d, sum / total);
        }
        static_cast<float*>(x.stats)[r.stats(j, h, s)] = static_cast<float>(top + std::log(total));
      }
    }
  }
}

void ragged_attention_backward(const cudnn_sdpa::Problem& p, const cudnn_sdpa::BackwardPointers& x) {
  const RaggedView r{p, x.ragged};
  const std::int64_t group = p.heads / p.kv_heads, dim = p.dim;
  for (std::int64_t j = 0; j < p.sequences; ++j) {
    const std::int64_t length = r.length(j);
    // dk, dv of this sequence, summed over each kv head's query heads: [kv_heads, length, dim]
    std::vector<double> dk(static_cast<std::size_t>(p.kv_heads * length * dim), 0.0), dv(dk.size(), 0.0);
    std::vector<double> dq(static_cast<std::size_t>(dim));
    for (std::int64_t h = 0; h < p.heads; ++h) {
      const std::int64_t kvh = h / group;
      for (std::int64_t s = 0; s < length; ++s) {
        const std::int64_t qi = r.q(j, h, s), oi = r.o(j, h, s);
        const double lse = static_cast<const float*>(x.stats)[r.stats(j, h, s)];
        const double delta = dot(x.d_o, oi, x.o, oi, dim);
        std::fill(dq.begin(), dq.end(), 0.0);
        const std::int64_t visible = p.causal ? s + 1 : length;
        for (std::int64_t t = 0; t < visible; ++t) {
          const std::int64_t ki = r.k(j, kvh, t), vi = r.v(j, kvh, t);
          const double prob = std::exp(p.scale * dot(x.q, qi, x.k, ki, dim) - lse);
          const double dscore = prob * (dot(x.d_o, oi, x.v, vi, dim) - delta) * p.scale;
          double* dk_row = dk.data() + (kvh * length + t) * dim;
          double* dv_row = dv.data() + (kvh * length + t) * dim;
          for (std::int64_t d = 0; d < dim; ++d) {
            dq[d] += dscore * bf16_at(x.k, ki + d);
            dk_row[d] += dscore * bf16_at(x.q, qi + d);
            dv_row[d] += prob * bf16_at(x.d_o, oi + d);
          }
        }
        for (std::int64_t d = 0; d < dim; ++d) store_bf16(x.dq, qi + d, dq[d]);
      }
    }
    for (std::int64_t kvh = 0; kvh < p.kv_heads; ++kvh)
      for (std::int64_t t = 0; t < length; ++t)
        for (std::int64_t d = 0; d < dim; ++d) {
          const std::size_t at = static_cast<std::size_t>((kvh * length + t) * dim + d);
          store_bf16(x.dk, r.k(j, kvh, t) + d, dk[at]);
          store_bf16(x.dv, r.v(j, kvh, t) + d, dv[at]);
        }
  }
}

#endif

}  // namespace

#if !KILN_CUDA_EMULATED
cudnn_sdpa::Runner& DeviceBackend::cudnn() {
  if (!cudnn_) cudnn_ = std::make_unique<cudnn_sdpa::Runner>();
  return *cudnn_;
}
#endif

// The batch's lengths and offsets as one device table, each part 16-byte aligned, in one
// buffer kept for the run: uploaded (a copy on the compute stream, so after every kernel
// that read the previous table) only when its content changes, so the layers' forward and
// backward of one micro-batch share one upload; reallocated only when it grows (the first
// steps), so a training step allocates and frees nothing.
cudnn_sdpa::RaggedTables DeviceBackend::stage_ragged(const RaggedBatch& ragged) {
  std::vector<unsigned char> packed;
  std::vector<std::size_t> starts;
  const auto append = [&](const auto& values) {
    starts.push_back((packed.size() + 15) / 16 * 16);
    packed.resize(starts.back() + values.size() * sizeof(values[0]));
    std::memcpy(packed.data() + starts.back(), values.data(), values.size() * sizeof(values[0]));
  };
  append(ragged.lengths);
  for (const auto* offsets : {&ragged.q, &ragged.k, &ragged.v, &ragged.o, &ragged.stats}) append(*offsets);
  if (packed.size() > ragged_capacity_) {
    if (ragged_table_) cudaFree(ragged_table_);  // synchronises: no queued kernel reads it any more
    ragged_table_ = allocate(packed.size());
    ragged_capacity_ = packed.size();
    ragged_content_.clear();
  }
  if (packed != ragged_content_) {
    copy_to_device(ragged_table_, packed.data(), packed.size());
    ragged_content_ = std::move(packed);
  }
  const auto* device = static_cast<const unsigned char*>(ragged_table_);
  return {device + starts[0], device + starts[1], device + starts[2],
          device + starts[3], device + starts[4], device + starts[5]};
}

void DeviceBackend::cudnn_attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor doc_ids,
                                            const ops::DocumentRuns& documents, bool causal, double scale) {
  constexpr const char* op = "flash_attention_forward";
  float* const stats = f32_pointer(op, "lse", lse);
  (void)document_ids(op, doc_ids);
  const RaggedBatch ragged = ragged_batch(q, k, v, out, documents, causal, scale);
  const cudnn_sdpa::ForwardPointers pointers{q.ptr, k.ptr, v.ptr, out.ptr, stats, stage_ragged(ragged)};
#if KILN_CUDA_EMULATED
  check_cudnn_call(op, {{"out", out}, {"q", q}, {"k", k}, {"v", v}}, doc_ids, documents, pointers.ragged);
  cudnn_sdpa::validate_forward(ragged.problem);
  ragged_attention_forward(ragged.problem, pointers);
#else
  cudnn().forward(ragged.problem, pointers, compute_);
#endif
}

void DeviceBackend::cudnn_attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k,
                                             Tensor v, Tensor out, Tensor lse, Tensor doc_ids,
                                             const ops::DocumentRuns& documents, bool causal, double scale) {
  constexpr const char* op = "flash_attention_backward";
  const float* const stats = f32_pointer(op, "lse", lse);
  (void)document_ids(op, doc_ids);
  require_same_layout(op, "dq", dq, "q", q);
  require_same_layout(op, "dk", dk, "k", k);
  require_same_layout(op, "dv", dv, "v", v);
  require_same_layout(op, "dout", dout, "out", out);
  const RaggedBatch ragged = ragged_batch(q, k, v, out, documents, causal, scale);
  const cudnn_sdpa::BackwardPointers pointers{q.ptr,  k.ptr,  v.ptr,  out.ptr, dout.ptr,
                                              stats,  dq.ptr, dk.ptr, dv.ptr,  stage_ragged(ragged)};
#if KILN_CUDA_EMULATED
  check_cudnn_call(op,
                   {{"dq", dq}, {"dk", dk}, {"dv", dv}, {"dout", dout}, {"q", q}, {"k", k}, {"v", v}, {"out", out}},
                   doc_ids, documents, pointers.ragged);
  cudnn_sdpa::validate_backward(ragged.problem);
  ragged_attention_backward(ragged.problem, pointers);
#else
  cudnn().backward(ragged.problem, pointers, compute_);
#endif
}

}  // namespace kiln::KILN_CUDA_NS
