#include "kernels/ops/cross_entropy.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "kernels/cpu/cross_entropy.hpp"
#include "kernels/ops/bf16_staging.hpp"
#include "kernels/ops/elementwise.hpp"
#include "kernels/ops/op_args.hpp"

namespace kiln::ops {

using namespace detail;

namespace {

std::int64_t logits_vocab(const char* op, const Tensor& logits, std::int64_t valid) {
  if (logits.rank() != 2) fail("ops::{}: `logits` is {}; expected [N, V]", op, logits.str());
  if (valid <= 0 || valid > logits.size(1))
    fail("ops::{}: valid_vocab {} must be in [1, {}] for logits {}", op, valid, logits.size(1),
         logits.str());
  return logits.size(1);
}

// Targets as int64; those of rows that count must lie in [0, limit).
std::vector<std::int64_t> checked_targets(const char* op, const Tensor& targets,
                                          const std::uint8_t* mask, std::int64_t rows,
                                          std::int64_t limit) {
  std::vector<std::int64_t> target = indices(op, "targets", targets, rows);
  for (std::int64_t i = 0; i < rows; ++i) {
    if (mask && mask[i] == 0) continue;
    const std::int64_t t = target[static_cast<std::size_t>(i)];
    if (t < 0 || t >= limit)
      fail("ops::{}: target {} at row {} is outside the vocabulary of {} tokens", op, t, i, limit);
  }
  return target;
}

template <class T>
LossSum masked_sum(const T* losses, const std::uint8_t* mask, std::int64_t rows) {
  LossSum total;
  for (std::int64_t i = 0; i < rows; ++i) {
    if (mask && mask[i] == 0) continue;
    total.sum += static_cast<double>(losses[i]);
    ++total.count;
  }
  return total;
}

// loss_sum [2] f64 on the host, checked before any work is done.
double* loss_sum_slots(const char* op, const Tensor& loss_sum) {
  require_defined(op, {{"loss_sum", loss_sum}});
  require_cpu(op, {{"loss_sum", loss_sum}});
  if (loss_sum.dtype != DType::F64 || loss_sum.shape != Shape{2} || !loss_sum.is_contiguous())
    fail("ops::{}: `loss_sum` is {}; expected a contiguous f64 [2] (sum, count)", op, loss_sum.str());
  return loss_sum.data<double>();
}

void store_loss_sum(double* slots, const LossSum& total) {
  slots[0] = total.sum;
  slots[1] = static_cast<double>(total.count);
}

}  // namespace

LossSum read_loss_sum(Tensor loss_sum) {
  if (loss_sum.defined() && loss_sum.device == Device::Cuda) {  // the one read-back of a step's loss
    OwnedTensor host(DType::F64, {2});
    copy(host, loss_sum);
    return read_loss_sum(host);
  }
  const double* slots = loss_sum_slots("read_loss_sum", loss_sum);
  return {slots[0], static_cast<std::int64_t>(slots[1])};
}

void cross_entropy_forward(Tensor losses, Tensor lse, Tensor loss_sum, Tensor logits, Tensor targets,
                           Tensor mask, std::int64_t valid_vocab) {
  constexpr const char* op = "cross_entropy_forward";
  if (on_cuda(op, {{"losses", losses}, {"lse", lse}, {"loss_sum", loss_sum}, {"logits", logits},
                   {"targets", targets}, {"mask", mask}})) {
    require_defined(op, {{"lse", lse}, {"loss_sum", loss_sum}, {"logits", logits}, {"targets", targets}});
    check_cuda_storage(op, {{"logits", logits}});
    logits_vocab(op, logits, valid_vocab);
    if (loss_sum.dtype != DType::F64 || loss_sum.shape != Shape{2})
      fail("ops::{}: `loss_sum` is {}; expected a contiguous f64 [2] (sum, count)", op, loss_sum.str());
    check_vector(op, "lse", lse, logits.size(0));
    check_vector(op, "losses", losses, logits.size(0));
    return cuda_backend_for(op).cross_entropy_forward(losses, lse, loss_sum, logits, targets, mask, valid_vocab);
  }
  const Bf16Staging staged(op, {write("losses", losses), write("lse", lse), read("logits", logits)});
  if (staged.active()) {
    cross_entropy_forward(losses, lse, loss_sum, logits, targets, mask, valid_vocab);
    return staged.write_back();
  }
  double* const total_out = loss_sum_slots(op, loss_sum);
  require_defined(op, {{"lse", lse}, {"logits", logits}, {"targets", targets}});
  require_cpu(
      op,
      {{"losses", losses}, {"lse", lse}, {"logits", logits}, {"targets", targets}, {"mask", mask}});
  const DType dtype = float_dtype(op, {{"losses", losses}, {"lse", lse}, {"logits", logits}});
  const std::int64_t V = logits_vocab(op, logits, valid_vocab);
  LossSum total;
  dispatch_float(dtype, [&]<class T>(T) {
    const auto logit_rows = const_rows<T>(op, "logits", logits, V);
    const std::int64_t N = logit_rows.rows;
    const std::uint8_t* keep = optional_mask(op, mask, N);
    const auto target = checked_targets(op, targets, keep, N, valid_vocab);
    std::vector<T> scratch_losses;
    T* loss_out = vector_of<T>(op, "losses", losses, N);
    if (loss_out == nullptr) {
      scratch_losses.resize(static_cast<std::size_t>(N));
      loss_out = scratch_losses.data();
    }
    cpu::cross_entropy_forward<T>(loss_out, vector_of<T>(op, "lse", lse, N), logit_rows,
                                  target.data(), keep, valid_vocab);
    total = masked_sum(loss_out, keep, N);
  });
  store_loss_sum(total_out, total);
}

namespace {

// Shared by the serial and vocab-parallel backward. `target_limit` bounds the targets of rows
// that count: the valid vocabulary when serial; under vocab parallelism a target may live on
// another rank, so only its sign can be checked here.
void cross_entropy_backward_impl(const char* op, Tensor dlogits, Tensor logits, Tensor targets,
                                 Tensor lse, Tensor mask, std::int64_t valid_local,
                                 std::int64_t first_id, std::int64_t target_limit,
                                 double grad_scale) {
  if (on_cuda(op, {{"dlogits", dlogits}, {"logits", logits}, {"targets", targets}, {"lse", lse}, {"mask", mask}})) {
    require_defined(op, {{"dlogits", dlogits}, {"logits", logits}, {"targets", targets}, {"lse", lse}});
    check_cuda_storage(op, {{"dlogits", dlogits}, {"logits", logits}});
    logits_vocab(op, logits, valid_local);
    check_shape(op, "dlogits", dlogits, logits.shape);
    check_vector(op, "lse", lse, logits.size(0));
    return cuda_backend_for(op).cross_entropy_backward(dlogits, logits, targets, lse, mask, valid_local, first_id,
                                                       grad_scale);
  }
  const Bf16Staging staged(op, {write("dlogits", dlogits), read("logits", logits), read("lse", lse)});
  if (staged.active()) {
    cross_entropy_backward_impl(op, dlogits, logits, targets, lse, mask, valid_local, first_id, target_limit, grad_scale);
    return staged.write_back();
  }
  const std::initializer_list<Arg> required = {
      {"dlogits", dlogits}, {"logits", logits}, {"targets", targets}, {"lse", lse}};
  require_defined(op, required);
  require_cpu(op, required);
  require_cpu(op, {{"mask", mask}});
  const DType dtype = float_dtype(op, {{"dlogits", dlogits}, {"logits", logits}, {"lse", lse}});
  const std::int64_t V = logits_vocab(op, logits, valid_local);
  check_shape(op, "dlogits", dlogits, logits.shape);
  dispatch_float(dtype, [&]<class T>(T) {
    const auto logit_rows = const_rows<T>(op, "logits", logits, V);
    const std::int64_t N = logit_rows.rows;
    const std::uint8_t* keep = optional_mask(op, mask, N);
    const auto target = checked_targets(op, targets, keep, N, target_limit);
    cpu::cross_entropy_backward<T>(rows<T>(op, "dlogits", dlogits, V), logit_rows, target.data(),
                                   vector_of<T>(op, "lse", lse, N), keep, valid_local, first_id,
                                   grad_scale);
  });
}

}  // namespace

void cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor targets, Tensor lse, Tensor mask,
                            std::int64_t valid_vocab, double grad_scale) {
  cross_entropy_backward_impl("cross_entropy_backward", dlogits, logits, targets, lse, mask,
                              valid_vocab, 0, valid_vocab, grad_scale);
}

void cross_entropy_backward_vocab_parallel(Tensor dlogits, Tensor logits, Tensor targets,
                                           Tensor lse, Tensor mask, std::int64_t valid_local,
                                           std::int64_t first_id, double grad_scale) {
  cross_entropy_backward_impl("cross_entropy_backward_vocab_parallel", dlogits, logits, targets,
                              lse, mask, valid_local, first_id,
                              std::numeric_limits<std::int64_t>::max(), grad_scale);
}

void cross_entropy_local_max(Tensor row_max, Tensor logits, std::int64_t valid_local) {
  constexpr const char* op = "cross_entropy_local_max";
  if (on_cuda(op, {{"row_max", row_max}, {"logits", logits}})) {
    require_defined(op, {{"row_max", row_max}, {"logits", logits}});
    check_cuda_storage(op, {{"logits", logits}});
    logits_vocab(op, logits, valid_local);
    check_vector(op, "row_max", row_max, logits.size(0));
    return cuda_backend_for(op).cross_entropy_local_max(row_max, logits, valid_local);
  }
  const Bf16Staging staged(op, {write("row_max", row_max), read("logits", logits)});
  if (staged.active()) {
    cross_entropy_local_max(row_max, logits, valid_local);
    return staged.write_back();
  }
  require_defined(op, {{"row_max", row_max}, {"logits", logits}});
  require_cpu(op, {{"row_max", row_max}, {"logits", logits}});
  const DType dtype = float_dtype(op, {{"row_max", row_max}, {"logits", logits}});
  if (logits.rank() != 2) fail("ops::{}: `logits` is {}; expected [N, V]", op, logits.str());
  if (valid_local < 0 || valid_local > logits.size(1))
    fail("ops::{}: valid_local {} outside [0, {}]", op, valid_local, logits.size(1));
  dispatch_float(dtype, [&]<class T>(T) {
    const auto logit_rows = const_rows<T>(op, "logits", logits, logits.size(1));
    cpu::row_max<T>(vector_of<T>(op, "row_max", row_max, logit_rows.rows), logit_rows, valid_local);
  });
}

void cross_entropy_local_sums(Tensor sum_exp, Tensor target_logit, Tensor logits, Tensor targets,
                              Tensor row_max, std::int64_t valid_local, std::int64_t first_id) {
  constexpr const char* op = "cross_entropy_local_sums";
  if (on_cuda(op, {{"sum_exp", sum_exp}, {"target_logit", target_logit}, {"logits", logits}, {"targets", targets},
                   {"row_max", row_max}})) {
    require_defined(op, {{"sum_exp", sum_exp}, {"target_logit", target_logit}, {"logits", logits},
                         {"targets", targets}, {"row_max", row_max}});
    check_cuda_storage(op, {{"logits", logits}});
    logits_vocab(op, logits, valid_local);
    for (const auto& [name, stat] : {Arg{"sum_exp", sum_exp}, Arg{"target_logit", target_logit}, Arg{"row_max", row_max}})
      check_vector(op, name, stat, logits.size(0));
    return cuda_backend_for(op).cross_entropy_local_sums(sum_exp, target_logit, logits, targets, row_max, valid_local,
                                                         first_id);
  }
  const Bf16Staging staged(op, {write("sum_exp", sum_exp), write("target_logit", target_logit), read("logits", logits),
                                read("row_max", row_max)});
  if (staged.active()) {
    cross_entropy_local_sums(sum_exp, target_logit, logits, targets, row_max, valid_local, first_id);
    return staged.write_back();
  }
  const std::initializer_list<Arg> all = {{"sum_exp", sum_exp},
                                          {"target_logit", target_logit},
                                          {"logits", logits},
                                          {"targets", targets},
                                          {"row_max", row_max}};
  require_defined(op, all);
  require_cpu(op, all);
  const DType dtype = float_dtype(op, {{"sum_exp", sum_exp},
                                       {"target_logit", target_logit},
                                       {"logits", logits},
                                       {"row_max", row_max}});
  if (logits.rank() != 2) fail("ops::{}: `logits` is {}; expected [N, V]", op, logits.str());
  if (valid_local < 0 || valid_local > logits.size(1))
    fail("ops::{}: valid_local {} outside [0, {}]", op, valid_local, logits.size(1));
  dispatch_float(dtype, [&]<class T>(T) {
    const auto logit_rows = const_rows<T>(op, "logits", logits, logits.size(1));
    const std::int64_t N = logit_rows.rows;
    const std::vector<std::int64_t> target = indices(op, "targets", targets, N);
    cpu::row_sum_exp_and_target<T>(
        vector_of<T>(op, "sum_exp", sum_exp, N), vector_of<T>(op, "target_logit", target_logit, N),
        logit_rows, target.data(), vector_of<T>(op, "row_max", row_max, N), valid_local, first_id);
  });
}

void cross_entropy_finish(Tensor losses, Tensor lse, Tensor loss_sum, Tensor row_max, Tensor sum_exp,
                          Tensor target_logit, Tensor mask) {
  constexpr const char* op = "cross_entropy_finish";
  if (on_cuda(op, {{"losses", losses}, {"lse", lse}, {"loss_sum", loss_sum}, {"row_max", row_max},
                   {"sum_exp", sum_exp}, {"target_logit", target_logit}, {"mask", mask}})) {
    require_defined(op, {{"lse", lse}, {"loss_sum", loss_sum}, {"row_max", row_max}, {"sum_exp", sum_exp},
                         {"target_logit", target_logit}});
    if (loss_sum.dtype != DType::F64 || loss_sum.shape != Shape{2})
      fail("ops::{}: `loss_sum` is {}; expected a contiguous f64 [2] (sum, count)", op, loss_sum.str());
    const std::int64_t rows = lse.numel();
    for (const auto& [name, stat] : {Arg{"losses", losses}, Arg{"row_max", row_max}, Arg{"sum_exp", sum_exp},
                                     Arg{"target_logit", target_logit}})
      check_vector(op, name, stat, rows);
    return cuda_backend_for(op).cross_entropy_finish(losses, lse, loss_sum, row_max, sum_exp, target_logit, mask);
  }
  const Bf16Staging staged(op, {write("losses", losses), write("lse", lse), read("row_max", row_max), read("sum_exp", sum_exp),
                                read("target_logit", target_logit)});
  if (staged.active()) {
    cross_entropy_finish(losses, lse, loss_sum, row_max, sum_exp, target_logit, mask);
    return staged.write_back();
  }
  double* const total_out = loss_sum_slots(op, loss_sum);
  const std::initializer_list<Arg> required = {
      {"lse", lse}, {"row_max", row_max}, {"sum_exp", sum_exp}, {"target_logit", target_logit}};
  require_defined(op, required);
  require_cpu(op, required);
  require_cpu(op, {{"losses", losses}, {"mask", mask}});
  const DType dtype = float_dtype(op, {{"losses", losses},
                                       {"lse", lse},
                                       {"row_max", row_max},
                                       {"sum_exp", sum_exp},
                                       {"target_logit", target_logit}});
  const std::int64_t N = lse.numel();
  LossSum total;
  dispatch_float(dtype, [&]<class T>(T) {
    const std::uint8_t* keep = optional_mask(op, mask, N);
    const T* maxima = vector_of<T>(op, "row_max", row_max, N);
    const T* sums = vector_of<T>(op, "sum_exp", sum_exp, N);
    const T* picked = vector_of<T>(op, "target_logit", target_logit, N);
    T* lse_out = vector_of<T>(op, "lse", lse, N);
    T* loss_out = vector_of<T>(op, "losses", losses, N);
    for (std::int64_t i = 0; i < N; ++i) {
      const bool counted = keep == nullptr || keep[i] != 0;
      lse_out[i] = counted ? maxima[i] + std::log(sums[i]) : T(0);
      const T loss = counted ? lse_out[i] - picked[i] : T(0);
      if (loss_out) loss_out[i] = loss;
      if (counted) {
        total.sum += static_cast<double>(loss);
        ++total.count;
      }
    }
  });
  store_loss_sum(total_out, total);
}

void softmax_forward(Tensor probs, Tensor logits, std::int64_t valid_vocab, double temperature) {
  constexpr const char* op = "softmax_forward";
  const Bf16Staging staged(op, {write("probs", probs), read("logits", logits)});
  if (staged.active()) {
    softmax_forward(probs, logits, valid_vocab, temperature);
    return staged.write_back();
  }
  require_defined(op, {{"probs", probs}, {"logits", logits}});
  require_cpu(op, {{"probs", probs}, {"logits", logits}});
  const DType dtype = float_dtype(op, {{"probs", probs}, {"logits", logits}});
  const std::int64_t V = logits_vocab(op, logits, valid_vocab);
  check_shape(op, "probs", probs, logits.shape);
  if (!(temperature > 0)) fail("ops::{}: temperature {} must be positive", op, temperature);
  dispatch_float(dtype, [&]<class T>(T) {
    cpu::softmax_rows<T>(rows<T>(op, "probs", probs, V), const_rows<T>(op, "logits", logits, V),
                         valid_vocab, temperature);
  });
}

}  // namespace kiln::ops
