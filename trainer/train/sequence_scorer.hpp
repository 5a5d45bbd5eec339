#pragma once
// Scores token sequences with a model (`kiln score`, and the model-based scoring stage of
// curation): for ids t_0 .. t_{n-1}, the log-probabilities log p(t_i | t_<i) for i = 1..n-1
// from one forward pass, computed in double from the logits over the real vocabulary (never
// the padding rows), and their negated sum, the sequence's negative log-likelihood. For a
// model imported from Hugging Face these are the numbers transformers gives for the same ids.
#include <cstdint>
#include <span>
#include <vector>

#include "trainer/model/transformer.hpp"

namespace kiln::train {

struct SequenceScore {
  std::int64_t tokens = 0;        // n
  double nll = 0.0;               // -sum of logprobs
  std::vector<double> logprobs;   // n - 1 values (kept only when asked for)
  double mean_nll() const;        // nll / (n - 1); 0 for n < 2
};

class SequenceScorer {
 public:
  explicit SequenceScorer(model::Transformer& model) : model_(model) {}
  // kiln::Error when the sequence is longer than the model's context (model.max_seq_len).
  SequenceScore score(std::span<const std::uint32_t> ids, bool keep_logprobs);

 private:
  model::Transformer& model_;
};

}  // namespace kiln::train
