#pragma once
// Reading and writing the Hugging Face tokenizer.json schema (version "1.0").
//
// Reading refuses, by name, every feature kiln does not implement (see tokenizer.hpp); a
// malformed document or a missing or mistyped field is reported with the source name and
// the field's path (e.g. "model.merges[12]").
//
// Writing produces the layout `tokenizers` writes: the fixed top-level key order, added
// tokens by id, the vocabulary by id, merges in rank order (as "a b" strings or [a, b] pairs,
// whichever the tokenizer was read with). Output is deterministic: content_hash relies on it.
#include <memory>
#include <string>
#include <string_view>

#include "data/tokenizer/tokenizer_impl.hpp"

namespace kiln::tok {

std::unique_ptr<Tokenizer::Impl> parse_tokenizer_json(std::string_view json_text, std::string_view source_name);
std::string write_tokenizer_json(const Tokenizer::Impl& impl);

}  // namespace kiln::tok
