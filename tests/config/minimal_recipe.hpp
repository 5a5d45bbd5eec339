#pragma once
// The smallest valid training recipe, which recipe tests extend or break one key at a time.
namespace kiln::testing {

inline constexpr const char* kMinimalRecipe = R"(model:
  family: gpt2
  d_model: 64
  n_layers: 2
  n_heads: 4
  max_seq_len: 64
data:
  tokenizer: t.json
  train: train.h5
train:
  steps: 100
  batch_size: 8
optim:
  lr: 1.0e-3
)";

}  // namespace kiln::testing
