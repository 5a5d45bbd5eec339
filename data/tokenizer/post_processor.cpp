#include "data/tokenizer/post_processor.hpp"

namespace kiln::tok {

PostProcessor::PostProcessor(std::vector<PostProcessorStep> steps, bool written_as_sequence)
    : steps_(std::move(steps)), written_as_sequence_(written_as_sequence) {
  // Each step wraps the output of the previous one: later steps' ids go outermost.
  for (const auto& step : steps_) {
    prefix_.insert(prefix_.begin(), step.before.begin(), step.before.end());
    suffix_.insert(suffix_.end(), step.after.begin(), step.after.end());
  }
}

}  // namespace kiln::tok
