#include "parallel/pipeline_links.hpp"

namespace kiln::parallel {

void PipelineLinks::place_in(memory::Allocator& allocator) {
  arena_ = memory::Arena(memory::MemoryCategory::pipeline, allocator);
}

void PipelineLinks::plan(int stages, int stage, const Shape& activation_shape, DType dtype) {
  memory::ArenaPlan plan;
  input_ = stage > 0 ? plan.reserve("input", dtype, activation_shape) : memory::ArenaSlot{};
  grad_output_ = stage + 1 < stages ? plan.reserve("grad_output", dtype, activation_shape) : memory::ArenaSlot{};
  arena_.allocate(std::move(plan));
}

Tensor PipelineLinks::input() const { return input_.valid() ? arena_.view(input_) : Tensor{}; }

Tensor PipelineLinks::grad_output() const { return grad_output_.valid() ? arena_.view(grad_output_) : Tensor{}; }

}  // namespace kiln::parallel
