#include "parallel/pipeline.hpp"

#include <algorithm>

#include "trainer/core/error.hpp"

namespace kiln::parallel {

namespace {

// Moves activations and gradients between neighbouring stages; a missing neighbour (first or
// last stage) turns the corresponding half of an exchange into nothing.
class StageLinks {
 public:
  StageLinks(Communicator& pipeline, const PipelineStage& stage, PipelineLinks& buffers)
      : pipeline_(pipeline), first_(pipeline.rank() == 0), last_(pipeline.rank() == pipeline.size() - 1) {
    buffers.plan(pipeline.size(), pipeline.rank(), stage.activation_shape, stage.dtype);
    input_ = buffers.input();
    grad_output_ = buffers.grad_output();
  }

  Tensor receive_input() {
    if (first_) return {};
    pipeline_.recv(input_, pipeline_.rank() - 1);
    return input_;
  }
  void send_output(Tensor output) {
    if (!last_) pipeline_.send(output, pipeline_.rank() + 1);
  }
  Tensor receive_grad_output() {
    if (last_) return {};
    pipeline_.recv(grad_output_, pipeline_.rank() + 1);
    return grad_output_;
  }
  void send_grad_input(Tensor grad_input) {
    if (!first_) pipeline_.send(grad_input, pipeline_.rank() - 1);
  }
  // Output downstream and its gradient back, in one exchange with the next stage.
  Tensor send_output_receive_grad(Tensor output) {
    if (last_) return {};
    pipeline_.send_recv(output, pipeline_.rank() + 1, grad_output_, pipeline_.rank() + 1);
    return grad_output_;
  }
  // Gradient upstream and the next input, in one exchange with the previous stage.
  Tensor send_grad_receive_input(Tensor grad_input) {
    if (first_) return {};
    pipeline_.send_recv(grad_input, pipeline_.rank() - 1, input_, pipeline_.rank() - 1);
    return input_;
  }

 private:
  Communicator& pipeline_;
  bool first_, last_;
  Tensor input_;
  Tensor grad_output_;
};

}  // namespace

int pipeline_slots(int stages, int stage, int micro_batches) {
  return std::min(stages - stage - 1, micro_batches) + 1;
}

void run_one_forward_one_backward(Communicator& pipeline, int micro_batches, const PipelineStage& stage) {
  PipelineLinks buffers;
  run_one_forward_one_backward(pipeline, micro_batches, stage, buffers);
}

void run_one_forward_one_backward(Communicator& pipeline, int micro_batches, const PipelineStage& stage,
                                  PipelineLinks& buffers) {
  if (micro_batches < 1) fail("pipeline: at least one micro-batch per step is needed");
  const int stages = pipeline.size(), rank = pipeline.rank();
  const int warmup = std::min(stages - rank - 1, micro_batches);
  const int steady = micro_batches - warmup;
  const int slots = warmup + 1;
  StageLinks links(pipeline, stage, buffers);
  int next_forward = 0, next_backward = 0;
  auto forward = [&](Tensor input) { const int m = next_forward++; return stage.forward(m, m % slots, input); };
  auto backward = [&](Tensor grad) { const int m = next_backward++; return stage.backward(m, m % slots, grad); };

  for (int i = 0; i < warmup; ++i) links.send_output(forward(links.receive_input()));
  Tensor input = steady > 0 ? links.receive_input() : Tensor{};
  for (int i = 0; i < steady; ++i) {
    const Tensor grad_output = links.send_output_receive_grad(forward(input));
    const Tensor grad_input = backward(grad_output);
    if (i == steady - 1) {
      links.send_grad_input(grad_input);
    } else {
      input = links.send_grad_receive_input(grad_input);
    }
  }
  for (int i = 0; i < warmup; ++i) links.send_grad_input(backward(links.receive_grad_output()));
}

void run_forward_only(Communicator& pipeline, int micro_batches, const PipelineStage& stage) {
  PipelineLinks buffers;
  run_forward_only(pipeline, micro_batches, stage, buffers);
}

void run_forward_only(Communicator& pipeline, int micro_batches, const PipelineStage& stage, PipelineLinks& buffers) {
  StageLinks links(pipeline, stage, buffers);
  for (int micro = 0; micro < micro_batches; ++micro) {
    links.send_output(stage.forward(micro, 0, links.receive_input()));
  }
}

}  // namespace kiln::parallel
