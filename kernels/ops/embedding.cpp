#include "kernels/ops/embedding.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "kernels/cpu/embedding.hpp"
#include "kernels/ops/bf16_staging.hpp"
#include "kernels/ops/op_args.hpp"

namespace kiln::ops {

using namespace detail;

namespace {

// An embedding table (or its gradient) is a contiguous [V, C] matrix; returns {V, C}.
std::pair<std::int64_t, std::int64_t> table_shape(const char* op, const char* name, const Tensor& table) {
  if (table.rank() != 2) fail("ops::{}: `{}` is {}; expected [V, C]", op, name, table.str());
  check_contiguous(op, name, table);
  return {table.size(0), table.size(1)};
}

void embedding_forward_impl(const char* op, Tensor out, Tensor ids, Tensor table, bool accumulate,
                            std::int64_t first_id, bool strict) {
  if (on_cuda(op, {{"out", out}, {"ids", ids}, {"table", table}})) {
    require_defined(op, {{"out", out}, {"ids", ids}, {"table", table}});
    check_cuda_storage(op, {{"out", out}, {"table", table}});
    const auto [V, C] = table_shape(op, "table", table);
    if (out.size(-1) != C) fail("ops::{}: `out` is {}; expected last dim {}", op, out.str(), C);
    (void)V;  // ids are range-checked on the host, in MicroBatch: a kernel cannot raise
    return cuda_backend_for(op).embedding_forward(out, ids, table, first_id, accumulate);
  }
  const Bf16Staging staged(op, {accumulate ? read_write("out", out) : write("out", out), read("table", table)});
  if (staged.active()) {
    embedding_forward_impl(op, out, ids, table, accumulate, first_id, strict);
    return staged.write_back();
  }
  const std::initializer_list<Arg> all = {{"out", out}, {"ids", ids}, {"table", table}};
  require_defined(op, all);
  require_cpu(op, all);
  const DType dtype = float_dtype(op, {{"out", out}, {"table", table}});
  const auto [V, C] = table_shape(op, "table", table);
  dispatch_float(dtype, [&]<class T>(T) {
    const auto outr = rows<T>(op, "out", out, C);
    const std::vector<std::int64_t> id = indices(op, "ids", ids, outr.rows);
    if (strict)
      for (std::size_t i = 0; i < id.size(); ++i)
        if (id[i] < 0 || id[i] >= V)
          fail("ops::{}: id {} at position {} is outside the table of {} rows", op, id[i], i, V);
    cpu::embedding_forward<T>(outr, id.data(), pointer<T>(table), V, first_id, accumulate);
  });
}

void embedding_backward_impl(const char* op, Tensor dtable, Tensor dout, Tensor ids,
                             std::int64_t first_id) {
  if (on_cuda(op, {{"dtable", dtable}, {"dout", dout}, {"ids", ids}})) {
    require_defined(op, {{"dtable", dtable}, {"dout", dout}, {"ids", ids}});
    check_cuda_storage(op, {{"dout", dout}});
    const auto [V, C] = table_shape(op, "dtable", dtable);
    if (dout.size(-1) != C) fail("ops::{}: `dout` is {}; expected last dim {}", op, dout.str(), C);
    (void)V;
    return cuda_backend_for(op).embedding_backward(dtable, dout, ids, first_id);
  }
  const Bf16Staging staged(op, {f32_gradient("dtable", dtable), read("dout", dout)});
  if (staged.active()) {
    embedding_backward_impl(op, dtable, dout, ids, first_id);
    return staged.write_back();
  }
  const std::initializer_list<Arg> all = {{"dtable", dtable}, {"dout", dout}, {"ids", ids}};
  require_defined(op, all);
  require_cpu(op, all);
  const DType dtype = float_dtype(op, {{"dtable", dtable}, {"dout", dout}});
  const auto [V, C] = table_shape(op, "dtable", dtable);
  dispatch_float(dtype, [&]<class T>(T) {
    const auto doutr = const_rows<T>(op, "dout", dout, C);
    const std::vector<std::int64_t> id = indices(op, "ids", ids, doutr.rows);
    cpu::embedding_backward<T>(pointer<T>(dtable), V, doutr, id.data(), first_id);
  });
}

}  // namespace

void embedding_forward(Tensor out, Tensor ids, Tensor table, Accumulate accumulate) {
  embedding_forward_impl("embedding_forward", out, ids, table, accumulate == Accumulate::Yes, 0,
                         true);
}

void embedding_backward(Tensor dtable, Tensor dout, Tensor ids) {
  embedding_backward_impl("embedding_backward", dtable, dout, ids, 0);
}

void embedding_forward_vocab_parallel(Tensor out, Tensor ids, Tensor table, std::int64_t first_id) {
  embedding_forward_impl("embedding_forward_vocab_parallel", out, ids, table, false, first_id,
                         false);
}

void embedding_backward_vocab_parallel(Tensor dtable, Tensor dout, Tensor ids,
                                       std::int64_t first_id) {
  embedding_backward_impl("embedding_backward_vocab_parallel", dtable, dout, ids, first_id);
}

}  // namespace kiln::ops
