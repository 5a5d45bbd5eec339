#pragma once
// Autoregressive generation with a KV cache (`kiln generate`): the prompt is prefilled in one
// forward, then one token at a time is sampled and fed back, until max_tokens, a stop token,
// or the model's context is full.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer/tokenizer.hpp"
#include "trainer/model/transformer.hpp"
#include "trainer/train/sampler.hpp"

namespace kiln::train {

struct GenerateOptions {
  SamplingOptions sampling;
  std::int64_t max_tokens = 128;
  std::uint64_t seed = 0;
  std::vector<std::uint32_t> stop_ids;  // generation ends after emitting one of these
};

struct Generation {
  std::vector<std::uint32_t> ids;  // generated ids (a final stop id included)
  std::string stop_reason;         // "stop token", "max tokens" or "context full"
};

Generation generate_ids(model::Transformer& model, const std::vector<std::uint32_t>& prompt_ids,
                        const GenerateOptions& options);

// The tokenizer's end-of-text token plus the named `stop` tokens; an unknown name is an error.
std::vector<std::uint32_t> stop_ids_for(const tok::Tokenizer& tokenizer, const std::vector<std::string>& stop_tokens);

}  // namespace kiln::train
