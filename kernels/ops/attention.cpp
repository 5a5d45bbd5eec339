#include "kernels/ops/attention.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "kernels/cpu/attention_merge.hpp"
#include "kernels/cpu/flash_attention.hpp"
#include "kernels/ops/bf16_staging.hpp"
#include "kernels/ops/op_args.hpp"

namespace kiln::ops {

using namespace detail;

namespace {

struct AttentionDims {
  std::int64_t batch, tq, tk, heads, kv_heads, dim;
};

AttentionDims check_attention(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& lse) {
  for (const Arg& arg : {Arg{"q", q}, Arg{"k", k}, Arg{"v", v}})
    if (arg.tensor.rank() != 4)
      fail("ops::{}: `{}` is {}; expected [B, T, H, Dh]", op, arg.name, arg.tensor.str());
  const AttentionDims dims{q.size(0), q.size(1), k.size(1), q.size(2), k.size(2), q.size(3)};
  if (k.shape != v.shape) fail("ops::{}: k {} and v {} differ in shape", op, k.str(), v.str());
  if (k.size(0) != dims.batch || k.size(3) != dims.dim)
    fail("ops::{}: q {} and k {} disagree on batch or head dim", op, q.str(), k.str());
  if (dims.kv_heads == 0 || dims.heads % dims.kv_heads != 0)
    fail("ops::{}: {} query heads are not a multiple of {} kv heads (q {}, k {})", op, dims.heads,
         dims.kv_heads, q.str(), k.str());
  if (dims.tq > dims.tk) fail("ops::{}: more queries than keys (q {}, k {})", op, q.str(), k.str());
  check_shape(op, "lse", lse, Shape{dims.batch, dims.heads, dims.tq});
  check_contiguous(op, "lse", lse);
  return dims;
}

double softmax_scale(const AttentionOptions& options, std::int64_t dim) {
  return options.softmax_scale != 0.0 ? options.softmax_scale
                                      : 1.0 / std::sqrt(static_cast<double>(dim));
}

void check_document_ids(const char* op, const Tensor& doc_ids, const AttentionDims& dims) {
  if (doc_ids.defined() && (doc_ids.rank() != 2 || doc_ids.size(0) != dims.batch || doc_ids.size(1) != dims.tk))
    fail("ops::{}: `doc_ids` is {}; expected [{}, {}]", op, doc_ids.str(), dims.batch, dims.tk);
}

std::vector<std::int64_t> document_ids(const char* op, const Tensor& doc_ids, const AttentionDims& dims) {
  check_document_ids(op, doc_ids, dims);
  if (!doc_ids.defined()) return {};
  return indices(op, "doc_ids", doc_ids, dims.batch * dims.tk);
}

// The cudnn library's extra demands (AttentionOptions): checked here, where the tensors' shapes
// are known; the backend checks the rest of cuDNN's contract (strides, alignment).
void check_cudnn_attention(const char* op, const Tensor& q, const AttentionDims& dims,
                           const AttentionOptions& options) {
  constexpr const char* fix = "set train.attention: flash";
  if (q.dtype != DType::BF16)
    fail("ops::{}: cuDNN attention takes bf16 tensors, not {} (q {}); {}", op, dtype_name(q.dtype), q.str(), fix);
  if (dims.tq != dims.tk)
    fail("ops::{}: cuDNN attention needs as many queries as keys (q {} positions, k {}); {}", op, dims.tq, dims.tk,
         fix);
  if (dims.dim % 8 != 0 || dims.dim > 256)
    fail("ops::{}: cuDNN attention needs a head dim that is a multiple of 8 and at most 256 (q {}); {}", op, q.str(),
         fix);
  if (options.documents == nullptr) fail("ops::{}: cuDNN attention needs the batch's document runs", op);
  std::int64_t row = 0, next = 0;
  for (const DocumentRun& run : *options.documents) {
    if (run.start == 0 && next == dims.tk) ++row, next = 0;
    if (run.row != row || run.start != next || run.length < 1 || run.start + run.length > dims.tk)
      fail("ops::{}: document run (row {}, start {}, length {}) does not continue row {} at {} of [{}, {}]", op,
           run.row, run.start, run.length, row, next, dims.batch, dims.tk);
    next += run.length;
  }
  if (row != dims.batch - 1 || next != dims.tk)
    fail("ops::{}: the document runs cover {} rows and {} tokens of the last; expected [{}, {}]", op, row + 1, next,
         dims.batch, dims.tk);
}

void refuse_cudnn_on_cpu(const char* op, const AttentionOptions& options) {
  if (options.library == AttentionLibrary::cudnn)
    fail("ops::{}: cuDNN attention runs on CUDA tensors only; on the CPU set train.attention: flash", op);
  if (options.library == AttentionLibrary::kiln_wgmma)
    fail("ops::{}: kiln's warpgroup-MMA attention runs on CUDA tensors only; on the CPU set train.attention: flash",
         op);
}

// ---- the CUDA side: kernels/cuda/attention.cu through the backend ---------------------------

void cuda_attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor doc_ids,
                            const AttentionOptions& options) {
  constexpr const char* op = "flash_attention_forward";
  require_defined(op, {{"out", out}, {"lse", lse}, {"q", q}, {"k", k}, {"v", v}});
  check_cuda_storage(op, {{"out", out}, {"q", q}, {"k", k}, {"v", v}});
  const AttentionDims dims = check_attention(op, q, k, v, lse);
  check_shape(op, "out", out, q.shape);
  check_document_ids(op, doc_ids, dims);
  const double scale = softmax_scale(options, dims.dim);
  if (options.library == AttentionLibrary::cudnn) {
    check_cudnn_attention(op, q, dims, options);
    return cuda_backend_for(op).cudnn_attention_forward(out, lse, q, k, v, doc_ids, *options.documents, options.causal,
                                                        scale);
  }
  cuda_backend_for(op).attention_forward(out, lse, q, k, v, doc_ids, options.causal, scale,
                                         options.library == AttentionLibrary::kiln_wgmma);
}

void cuda_attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out,
                             Tensor lse, Tensor doc_ids, const AttentionOptions& options) {
  constexpr const char* op = "flash_attention_backward";
  require_defined(op, {{"dq", dq}, {"dk", dk}, {"dv", dv}, {"dout", dout}, {"q", q}, {"k", k}, {"v", v},
                       {"out", out}, {"lse", lse}});
  check_cuda_storage(op, {{"dq", dq}, {"dk", dk}, {"dv", dv}, {"dout", dout}, {"q", q}, {"k", k}, {"v", v},
                          {"out", out}});
  const AttentionDims dims = check_attention(op, q, k, v, lse);
  for (const Arg& arg : {Arg{"out", out}, Arg{"dout", dout}, Arg{"dq", dq}}) check_shape(op, arg.name, arg.tensor, q.shape);
  check_shape(op, "dk", dk, k.shape);
  check_shape(op, "dv", dv, v.shape);
  check_document_ids(op, doc_ids, dims);
  const double scale = softmax_scale(options, dims.dim);
  if (options.library == AttentionLibrary::cudnn) {
    check_cudnn_attention(op, q, dims, options);
    return cuda_backend_for(op).cudnn_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, doc_ids,
                                                         *options.documents, options.causal, scale);
  }
  cuda_backend_for(op).attention_backward(dq, dk, dv, dout, q, k, v, out, lse, doc_ids, options.causal, scale,
                                          options.library == AttentionLibrary::kiln_wgmma);
}

}  // namespace

DocumentRuns document_runs(const std::vector<std::int64_t>& doc_ids, std::int64_t rows, std::int64_t seq_len) {
  if (!doc_ids.empty() && static_cast<std::int64_t>(doc_ids.size()) != rows * seq_len)
    fail("ops::document_runs: {} doc ids for [{}, {}]", doc_ids.size(), rows, seq_len);
  DocumentRuns runs;
  for (std::int64_t row = 0; row < rows; ++row) {
    std::int64_t start = 0;
    for (std::int64_t t = 1; t <= seq_len; ++t) {
      const bool boundary = t == seq_len || (!doc_ids.empty() && doc_ids[static_cast<std::size_t>(row * seq_len + t)] !=
                                                                     doc_ids[static_cast<std::size_t>(row * seq_len + t - 1)]);
      if (!boundary) continue;
      runs.push_back({row, start, t - start});
      start = t;
    }
  }
  return runs;
}

void flash_attention_forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor doc_ids,
                             const AttentionOptions& options) {
  constexpr const char* op = "flash_attention_forward";
  if (on_cuda(op, {{"out", out}, {"lse", lse}, {"q", q}, {"k", k}, {"v", v}, {"doc_ids", doc_ids}}))
    return cuda_attention_forward(out, lse, q, k, v, doc_ids, options);
  refuse_cudnn_on_cpu(op, options);
  const Bf16Staging staged(op, {write("out", out), write("lse", lse), read("q", q), read("k", k), read("v", v)});
  if (staged.active()) {
    flash_attention_forward(out, lse, q, k, v, doc_ids, options);
    return staged.write_back();
  }
  const std::initializer_list<Arg> required = {
      {"out", out}, {"lse", lse}, {"q", q}, {"k", k}, {"v", v}};
  require_defined(op, required);
  require_cpu(op, required);
  require_cpu(op, {{"doc_ids", doc_ids}});
  const DType dtype = float_dtype(op, required);
  const AttentionDims dims = check_attention(op, q, k, v, lse);
  check_shape(op, "out", out, q.shape);
  const std::vector<std::int64_t> docs = document_ids(op, doc_ids, dims);
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::flash_attention_forward<T>(
        heads<T>(op, "out", out), pointer<T>(lse), const_heads<T>(op, "q", q),
        const_heads<T>(op, "k", k), const_heads<T>(op, "v", v),
        docs.empty() ? nullptr : docs.data(), options.causal, softmax_scale(options, dims.dim));
  });
}

void flash_attention_backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k,
                              Tensor v, Tensor out, Tensor lse, Tensor doc_ids,
                              const AttentionOptions& options) {
  constexpr const char* op = "flash_attention_backward";
  if (on_cuda(op, {{"dq", dq}, {"dk", dk}, {"dv", dv}, {"dout", dout}, {"q", q}, {"k", k}, {"v", v},
                   {"out", out}, {"lse", lse}, {"doc_ids", doc_ids}}))
    return cuda_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, doc_ids, options);
  refuse_cudnn_on_cpu(op, options);
  const Bf16Staging staged(op, {write("dq", dq), write("dk", dk), write("dv", dv), read("dout", dout), read("q", q),
                                read("k", k), read("v", v), read("out", out), read("lse", lse)});
  if (staged.active()) {
    flash_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, doc_ids, options);
    return staged.write_back();
  }
  const std::initializer_list<Arg> required = {{"dq", dq},     {"dk", dk},   {"dv", dv},
                                               {"dout", dout}, {"q", q},     {"k", k},
                                               {"v", v},       {"out", out}, {"lse", lse}};
  require_defined(op, required);
  require_cpu(op, required);
  require_cpu(op, {{"doc_ids", doc_ids}});
  const DType dtype = float_dtype(op, required);
  const AttentionDims dims = check_attention(op, q, k, v, lse);
  check_shape(op, "out", out, q.shape);
  check_shape(op, "dout", dout, q.shape);
  check_shape(op, "dq", dq, q.shape);
  check_shape(op, "dk", dk, k.shape);
  check_shape(op, "dv", dv, v.shape);
  const std::vector<std::int64_t> docs = document_ids(op, doc_ids, dims);
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::flash_attention_backward<T>(
        heads<T>(op, "dq", dq), heads<T>(op, "dk", dk), heads<T>(op, "dv", dv),
        const_heads<T>(op, "dout", dout), const_heads<T>(op, "q", q), const_heads<T>(op, "k", k),
        const_heads<T>(op, "v", v), const_heads<T>(op, "out", out), pointer<T>(lse),
        docs.empty() ? nullptr : docs.data(), options.causal, softmax_scale(options, dims.dim));
  });
}

namespace {

cpu::StatStrides stat_strides(const Tensor& x) { return {x.stride(0), x.stride(1), x.stride(2)}; }

void check_merge(const char* op, const Tensor& out, const Tensor& lse, const Tensor& part, const Tensor& part_lse) {
  if (out.rank() != 4 || out.stride(3) != 1) fail("ops::{}: `out` is {}; expected [B, T, H, D] with unit stride over D", op, out.str());
  check_shape(op, "part", part, out.shape);
  if (part.stride(3) != 1) fail("ops::{}: `part` is {}; expected unit stride over D", op, part.str());
  const Shape stats{out.size(0), out.size(2), out.size(1)};
  check_shape(op, "lse", lse, stats);
  check_shape(op, "part_lse", part_lse, stats);
  for (const Arg& arg : {Arg{"lse", lse}, Arg{"part", part}, Arg{"part_lse", part_lse}})
    if (arg.tensor.dtype != out.dtype) fail("ops::{}: `{}` is {} but `out` is {}", op, arg.name, arg.tensor.str(), out.str());
}

}  // namespace

void merge_attention(Tensor out, Tensor lse, Tensor part, Tensor part_lse) {
  constexpr const char* op = "merge_attention";
  const std::initializer_list<Arg> all = {{"out", out}, {"lse", lse}, {"part", part}, {"part_lse", part_lse}};
  require_defined(op, all);
  check_merge(op, out, lse, part, part_lse);
  if (on_cuda(op, all)) {
    if (out.dtype != DType::F32) fail("ops::{}: on the CUDA device the merge is f32 (out {})", op, out.str());
    return cuda_backend_for(op).merge_attention(out, lse, part, part_lse);
  }
  require_cpu(op, all);
  const DType dtype = float_dtype(op, all);
  if (dtype != DType::F32 && dtype != DType::F64) fail("ops::{}: f32 or f64 tensors, not {}", op, dtype_name(dtype));
  dispatch_float(dtype, [&]<class T>(T) {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      cpu::merge_attention<T>(heads<T>(op, "out", out), pointer<T>(lse), stat_strides(lse), const_heads<T>(op, "part", part),
                              pointer<T>(part_lse), stat_strides(part_lse));
    }
  });
}

}  // namespace kiln::ops
