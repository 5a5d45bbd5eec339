#pragma once
// The buffers one pipeline stage receives into (DESIGN.md §6): the input from the previous
// stage and the gradient from the next, each [B, T, C] of one micro-batch. One pipeline
// arena kept across steps: planned again only when the activation shape changes, so a
// training run allocates it once. The first stage receives no input, the last no gradient;
// neither gets a slot for it.
#include "kernels/memory/arena.hpp"
#include "kernels/tensor.hpp"

namespace kiln::parallel {

class PipelineLinks {
 public:
  // The buffers live in `allocator`'s memory (where the model lives; the host's by default).
  void place_in(memory::Allocator& allocator);
  // Sizes the buffers for stage `stage` of `stages`; keeps them when nothing changed.
  void plan(int stages, int stage, const Shape& activation_shape, DType dtype);

  Tensor input() const;        // undefined on the first stage
  Tensor grad_output() const;  // undefined on the last stage
  std::size_t bytes() const { return arena_.bytes(); }

 private:
  memory::Arena arena_{memory::MemoryCategory::pipeline};
  memory::ArenaSlot input_;
  memory::ArenaSlot grad_output_;
};

}  // namespace kiln::parallel
