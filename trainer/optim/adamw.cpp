#include "trainer/optim/adamw.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "trainer/core/error.hpp"

namespace kiln::optim {

namespace {

std::vector<AdamW::Segment> segments_of(const model::ParameterStore& params, std::int64_t begin, std::int64_t end) {
  std::vector<AdamW::Segment> segments;
  for (std::size_t index = 0; index < params.size(); ++index) {
    const auto& info = params.infos()[index];
    const std::int64_t first = std::max(begin, info.offset);
    const std::int64_t last = std::min(end, info.offset + info.numel());
    if (first < last) segments.push_back({index, first - info.offset, last - info.offset, first - begin});
  }
  return segments;
}

Tensor flat_slice(Tensor flat, std::int64_t offset, std::int64_t length) { return flat.narrow(0, offset, length); }

}  // namespace

AdamW::AdamW(const model::ParameterStore& params, AdamWConfig config, std::int64_t begin, std::int64_t end)
    : config_(config),
      begin_(begin),
      end_(end < 0 ? params.numel() : end),
      state_(memory::MemoryCategory::optimizer_state, params.allocator()) {
  if (begin_ < 0 || begin_ > end_ || end_ > params.numel()) {
    fail("AdamW: owned range [{}, {}) outside the {} parameters", begin_, end_, params.numel());
  }
  segments_ = segments_of(params, begin_, end_);
  // Moments (and, with bf16 values, the f32 masters) in one optimizer-state arena, indexed
  // from the range's start.
  const Shape range{end_ - begin_};
  const DType state_dtype = params.grad_dtype();  // f32 under bf16 values
  memory::ArenaPlan plan;
  const memory::ArenaSlot exp_avg = plan.reserve("exp_avg", state_dtype, range);
  const memory::ArenaSlot exp_avg_sq = plan.reserve("exp_avg_sq", state_dtype, range);
  std::optional<memory::ArenaSlot> masters;
  if (params.dtype() != state_dtype) masters = plan.reserve("masters", state_dtype, range);
  state_.allocate(std::move(plan));
  exp_avg_ = state_.view(exp_avg);
  exp_avg_sq_ = state_.view(exp_avg_sq);
  if (masters) masters_ = state_.view(*masters);
}

Tensor AdamW::masters(const model::ParameterStore& params) const {
  if (separate_masters()) return masters_;
  return params.values().narrow(0, begin_, end_ - begin_);
}

Tensor AdamW::master(const model::ParameterStore& params, const Segment& segment) const {
  return flat_slice(masters(params), segment.offset, segment.end - segment.begin);
}

void AdamW::masters_from_working_copy(const model::ParameterStore& params) {
  if (separate_masters()) ops::copy(masters(params), params.values().narrow(0, begin_, end_ - begin_));
}

double AdamW::clip_factor(double norm, double max_norm) {
  if (max_norm <= 0.0 || norm <= max_norm) return 1.0;
  return max_norm / (norm + 1e-6);
}

void AdamW::step(const model::ParameterStore& params, Tensor grads, double lr, double grad_scale) {
  if (grads.numel() != end_ - begin_) fail("AdamW: {} gradients for an owned range of {}", grads.numel(), end_ - begin_);
  ++steps_taken_;
  ops::AdamWStep update;
  update.lr = lr;
  update.beta1 = config_.beta1;
  update.beta2 = config_.beta2;
  update.eps = config_.eps;
  update.weight_decay = config_.weight_decay;
  update.step = steps_taken_;
  update.grad_scale = grad_scale;
  std::vector<ops::AdamWSegment> pieces;
  pieces.reserve(segments_.size());
  for (const auto& segment : segments_) {
    const auto& info = params.infos()[segment.parameter];
    pieces.push_back({info.offset + segment.begin, segment.offset, segment.end - segment.begin, info.weight_decay});
  }
  if (pieces.empty()) return;
  // Separate masters are indexed like the moments (from the range's start), not like the store.
  if (separate_masters())
    for (auto& piece : pieces) piece.param_offset = piece.state_offset;
  // With separate masters the update pass also rounds each updated weight into the range's
  // bf16 working copy, at the masters' offsets.
  const Tensor updated = separate_masters() ? masters(params) : params.values();
  const Tensor working_copy = separate_masters() ? params.values().narrow(0, begin_, end_ - begin_) : Tensor{};
  ops::adamw_step_segments(updated, grads, exp_avg_, exp_avg_sq_, pieces, update, working_copy);
}

Tensor AdamW::exp_avg(const Segment& segment) const {
  return flat_slice(exp_avg_, segment.offset, segment.end - segment.begin);
}

Tensor AdamW::exp_avg_sq(const Segment& segment) const {
  return flat_slice(exp_avg_sq_, segment.offset, segment.end - segment.begin);
}

}  // namespace kiln::optim
