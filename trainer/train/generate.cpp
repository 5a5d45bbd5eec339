#include "trainer/train/generate.hpp"

#include <algorithm>

#include "trainer/core/error.hpp"

namespace kiln::train {

namespace {

// The logits row of the last position of a [1, Tn, Vp] decode output, as f32 on the host
// (where the model lives on the CUDA device, or stores bf16, a copy of that one row).
OwnedTensor last_row(Tensor logits) {
  const Tensor row = logits.select(0).select(logits.size(1) - 1);
  OwnedTensor host(DType::F32, row.shape);
  ops::copy(host, row);
  return host;
}

}  // namespace

Generation generate_ids(model::Transformer& model, const std::vector<std::uint32_t>& prompt_ids,
                        const GenerateOptions& options) {
  if (prompt_ids.empty()) fail("generate: the prompt encodes to no tokens");
  const auto& config = model.config();
  const auto prompt_length = static_cast<std::int64_t>(prompt_ids.size());
  if (prompt_length >= config.max_seq_len) {
    fail("generate: the prompt has {} tokens but the model's context is {} (model.max_seq_len)", prompt_length,
         config.max_seq_len);
  }
  const std::int64_t capacity = std::min(config.max_seq_len, prompt_length + options.max_tokens);
  auto cache = model.make_kv_cache(1, capacity);
  Rng rng(options.seed);
  Generation generation;

  std::vector<std::uint32_t> feed = prompt_ids;
  // The prompt's ids are checked once here (the model does not read them); sampled ids are
  // inside the vocabulary by construction.
  model::Batch prompt;
  prompt.tokens = Tensor::of(feed.data(), {1, prompt_length});
  const model::BatchInputs checked(prompt, model::BatchLimits::of(config), "generate: the prompt");
  while (true) {
    const Tensor logits = model.forward_decode(cache, Tensor::of(feed.data(), {1, static_cast<std::int64_t>(feed.size())}));
    const std::uint32_t next = sample_token(last_row(logits), config.vocab_size, options.sampling, rng);
    generation.ids.push_back(next);
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), next) != options.stop_ids.end()) {
      generation.stop_reason = "stop token";
      break;
    }
    if (static_cast<std::int64_t>(generation.ids.size()) >= options.max_tokens) {
      generation.stop_reason = "max tokens";
      break;
    }
    if (cache.length >= capacity) {
      generation.stop_reason = "context full";
      break;
    }
    feed.assign(1, next);
  }
  return generation;
}

std::vector<std::uint32_t> stop_ids_for(const tok::Tokenizer& tokenizer, const std::vector<std::string>& stop_tokens) {
  std::vector<std::uint32_t> ids;
  if (const auto eos = tokenizer.eos_id()) ids.push_back(*eos);
  for (const auto& token : stop_tokens) {
    const auto id = tokenizer.token_to_id(token);
    if (!id) fail("--stop '{}' is not a token of the model's tokenizer", token);
    ids.push_back(*id);
  }
  return ids;
}

}  // namespace kiln::train
