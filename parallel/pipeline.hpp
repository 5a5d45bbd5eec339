#pragma once
// The 1F1B pipeline schedule (DESIGN.md §6; PipeDream-flush as in Megatron-LM): one stage's
// part of an optimizer step over M micro-batches.
//
//   warm-up    stage s runs min(P - s - 1, M) forwards, sending each output downstream
//   steady     one forward, then one backward (of the oldest micro-batch in flight), the
//              output sent and the incoming gradient received in one exchange
//   cool-down  the remaining backwards
// so at most P - s micro-batches are in flight on stage s: that many activation slots.
// Forwards and backwards each run in micro-batch order 0..M-1, on every stage.
//
// The stage's model work comes in through callbacks; activations and gradients travel over the
// pipeline communicator (ranks = stages) as [B, T, C] tensors of one fixed shape.
#include <functional>

#include "kernels/tensor.hpp"
#include "parallel/communicator.hpp"
#include "parallel/pipeline_links.hpp"

namespace kiln::parallel {

struct PipelineStage {
  Shape activation_shape;           // [B, T, C] of one micro-batch
  DType dtype = DType::F32;
  // forward(micro, slot, input) -> output to send downstream (undefined on the last stage).
  // `input` is undefined on the first stage.
  std::function<Tensor(int micro, int slot, Tensor input)> forward;
  // backward(micro, slot, grad_output) -> gradient of the stage input to send upstream
  // (undefined on the first stage). `grad_output` is undefined on the last stage.
  std::function<Tensor(int micro, int slot, Tensor grad_output)> backward;
};

// Activation slots stage `stage` of `stages` needs for `micro_batches` in flight.
int pipeline_slots(int stages, int stage, int micro_batches);

// Runs the schedule; every rank of `pipeline` calls it with the same micro_batches. Stages
// receive into `buffers`, which a training loop keeps from step to step (they are planned
// again only when the activation shape changes); without it, buffers for this call only.
void run_one_forward_one_backward(Communicator& pipeline, int micro_batches, const PipelineStage& stage,
                                  PipelineLinks& buffers);
void run_one_forward_one_backward(Communicator& pipeline, int micro_batches, const PipelineStage& stage);

// Forwards only (evaluation): each micro-batch flows through the stages in order, in slot 0;
// stage.backward is not used.
void run_forward_only(Communicator& pipeline, int micro_batches, const PipelineStage& stage, PipelineLinks& buffers);
void run_forward_only(Communicator& pipeline, int micro_batches, const PipelineStage& stage);

}  // namespace kiln::parallel
