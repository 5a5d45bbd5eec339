#include "kernels/ops/bf16_staging.hpp"

#include <algorithm>

#include "kernels/cpu/bf16.hpp"
#include "kernels/cpu/views.hpp"
#include "trainer/core/error.hpp"

namespace kiln::ops::detail {

namespace {

// fp32 scratch reused from call to call: slot k of a thread holds the k-th staged tensor of
// the op running on it, so a training step allocates only while its shapes first grow.
class ScratchPool {
 public:
  std::size_t mark() const { return used_; }
  void release_to(std::size_t mark) { used_ = mark; }

  float* acquire(std::int64_t elements) {
    // At least one element, so an empty tensor keeps a non-null (defined) view.
    const std::size_t bytes = sizeof(float) * static_cast<std::size_t>(std::max<std::int64_t>(elements, 1));
    if (used_ == slots_.size()) slots_.emplace_back();
    HostBuffer& slot = slots_[used_++];
    if (slot.size() < bytes) slot = HostBuffer(bytes);
    return static_cast<float*>(slot.data());
  }

 private:
  std::vector<HostBuffer> slots_;
  std::size_t used_ = 0;
};

ScratchPool& scratch_pool() {
  thread_local ScratchPool pool;
  return pool;
}

// Offset in elements of row `row` (the flattened leading dims) of a view.
std::int64_t row_offset(const Tensor& tensor, std::int64_t row) {
  std::int64_t offset = 0;
  for (int dim = tensor.rank() - 2; dim >= 0; --dim) {
    offset += (row % tensor.shape[dim]) * tensor.strides[dim];
    row /= tensor.shape[dim];
  }
  return offset;
}

// Calls convert(row_data, row_index, inner_stride) for every innermost row of the view.
template <class Convert>
void for_each_row(const Tensor& tensor, Convert&& convert) {
  if (tensor.rank() == 0) {
    convert(std::int64_t{0}, std::int64_t{0}, std::int64_t{1}, std::int64_t{1});
    return;
  }
  const std::int64_t cols = tensor.size(-1);
  if (cols == 0 || tensor.numel() == 0) return;
  if (tensor.is_contiguous()) {
    convert(std::int64_t{0}, std::int64_t{0}, tensor.numel(), std::int64_t{1});
    return;
  }
  const std::int64_t n_rows = tensor.numel() / cols, inner = tensor.stride(-1);
#pragma omp parallel for if (cpu::parallel_worth(tensor.numel())) schedule(static)
  for (std::int64_t row = 0; row < n_rows; ++row)
    convert(row_offset(tensor, row), row * cols, cols, inner);
}

void require_bf16_partners(const char* op, std::initializer_list<StagedArg> args,
                           const StagedArg& bf16) {
  for (const StagedArg& arg : args) {
    const Tensor& t = arg.tensor;
    if (!t.defined()) continue;
    if (t.device != Device::Cpu)
      fail("ops::{}: `{}` is {}, but this op has no CUDA implementation yet; pass host tensors", op,
           arg.name, t.str());
    switch (t.dtype) {
      case DType::BF16:
        if (arg.f32_only)
          fail("ops::{}: `{}` is {}; a parameter gradient stays f32 under bf16 storage (it "
               "accumulates over micro-batches)",
               op, arg.name, t.str());
        break;
      case DType::F32:
        break;
      case DType::F64:
        fail("ops::{}: `{}` is {} but `{}` is {}; f64 does not mix with bf16 storage (f64 ops take "
             "f64 throughout)",
             op, arg.name, t.str(), bf16.name, bf16.tensor.str());
      default:
        fail("ops::{}: `{}` is {}; CPU kernels take f32, bf16 or f64", op, arg.name, t.str());
    }
  }
}

}  // namespace

void widen_into(float* dst, const Tensor& bf16) {
  const auto* src = static_cast<const std::uint16_t*>(bf16.ptr);
  for_each_row(bf16, [&](std::int64_t from, std::int64_t to, std::int64_t n, std::int64_t stride) {
    if (stride == 1) {
      cpu::widen_bf16(dst + to, src + from, n);
    } else {
      for (std::int64_t i = 0; i < n; ++i) dst[to + i] = cpu::bf16_bits_to_float(src[from + i * stride]);
    }
  });
}

void narrow_into(const Tensor& bf16, const float* src) {
  auto* dst = static_cast<std::uint16_t*>(bf16.ptr);
  for_each_row(bf16, [&](std::int64_t to, std::int64_t from, std::int64_t n, std::int64_t stride) {
    if (stride == 1) {
      cpu::narrow_to_bf16(dst + to, src + from, n);
    } else {
      for (std::int64_t i = 0; i < n; ++i) dst[to + i * stride] = cpu::float_to_bf16_bits(src[from + i]);
    }
  });
}

Bf16Staging::Bf16Staging(const char* op, std::initializer_list<StagedArg> args) {
  const auto bf16 = std::find_if(args.begin(), args.end(), [](const StagedArg& arg) {
    return arg.tensor.defined() && arg.tensor.dtype == DType::BF16;
  });
  if (bf16 == args.end()) return;  // f32 or f64: the op's own checks apply
  require_bf16_partners(op, args, *bf16);
  active_ = true;
  ScratchPool& pool = scratch_pool();
  pool_mark_ = pool.mark();
  for (const StagedArg& arg : args) {
    if (!arg.tensor.defined() || arg.tensor.dtype != DType::BF16) continue;
    float* scratch = pool.acquire(arg.tensor.numel());
    if (arg.access != Access::Write) widen_into(scratch, arg.tensor);
    const Tensor staged(scratch, DType::F32, arg.tensor.shape);
    if (arg.access != Access::Read) outputs_.push_back({arg.tensor, staged});
    arg.tensor = staged;
  }
}

Bf16Staging::~Bf16Staging() {
  if (active_) scratch_pool().release_to(pool_mark_);
}

void Bf16Staging::write_back() const {
  for (const Output& output : outputs_) narrow_into(output.bf16, static_cast<const float*>(output.scratch.ptr));
}

}  // namespace kiln::ops::detail
