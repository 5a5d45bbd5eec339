#pragma once
// The tokenizer keys llama.cpp reads from GGUF, for kiln's byte-level BPE tokenizers:
//   tokenizer.ggml.model        "gpt2" (byte-level BPE)
//   tokenizer.ggml.pre          "gpt-2" (ByteLevel pre-tokenizer) or "llama-bpe" (Llama-3 Split)
//   tokenizer.ggml.tokens       every id's token text, as in tokenizer.json's vocab
//   tokenizer.ggml.token_type   1 normal, 3 control (special added token), 4 user-defined
//                               (other added token), 5 unused (an id no token has: "[PAD<id>]")
//   tokenizer.ggml.merges       "left right" pairs in merge order
//   tokenizer.ggml.bos_token_id / eos_token_id, tokenizer.ggml.add_bos_token
//   tokenizer.chat_template     the training data's chat template, as Jinja
// The token list is as long as the model's vocabulary (vocab_size may exceed the tokenizer's).
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "trainer/export/gguf_format.hpp"

namespace kiln::interop {

inline constexpr std::int32_t kGgufTokenNormal = 1;
inline constexpr std::int32_t kGgufTokenControl = 3;
inline constexpr std::int32_t kGgufTokenUserDefined = 4;
inline constexpr std::int32_t kGgufTokenUnused = 5;

// Reads tokenizer_json (the checkpoint's tokenizer.json); kiln::Error naming the file and the
// field when it is not a byte-level BPE tokenizer llama.cpp can run.
std::vector<std::pair<std::string, GgufValue>> gguf_tokenizer_metadata(const std::filesystem::path& tokenizer_json,
                                                                       std::int64_t model_vocab_size,
                                                                       const std::string& chat_template);

}  // namespace kiln::interop
