#pragma once
// Tokenizer::Impl: the parts of a tokenizer.json pipeline, in the order encode runs them
// (added tokens -> pre-tokenizer -> BPE model -> post-processor) plus the decoder.
// Shared by tokenizer.cpp (encode/decode), tokenizer_json.cpp (read/write) and
// bpe_trainer.cpp (which builds one from learned merges).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer/added_vocabulary.hpp"
#include "data/tokenizer/bpe_model.hpp"
#include "data/tokenizer/post_processor.hpp"
#include "data/tokenizer/pre_tokenizer.hpp"
#include "data/tokenizer/tokenizer.hpp"

namespace kiln::tok {

// The ByteLevel decoder's options (they do not change decoding; kept to write them back).
struct ByteLevelDecoder {
  bool add_prefix_space = true;
  bool trim_offsets = true;
  bool use_regex = true;
};

struct Tokenizer::Impl {
  // `added_tokens` are added in order, each getting the id `tokenizers` would give it.
  Impl(BpeModel bpe_model, const std::vector<AddedToken>& added_tokens, PreTokenizer pre,
       PostProcessor post, std::optional<ByteLevelDecoder> byte_level_decoder);

  // Appends the ids of `text` (valid UTF-8), without the post-processor.
  void encode_into(std::string_view text, std::vector<TokenId>& ids) const;

  BpeModel model;
  AddedVocabulary added;
  PreTokenizer pre_tokenizer;
  PostProcessor post_processor;
  std::optional<ByteLevelDecoder> decoder;  // nullopt: "decoder": null (tokens joined by " ")

  // Per id (below vocab_size): the token's text (added tokens win over the model, as in
  // `tokenizers`) and the bytes the decoder turns it into. Ids in holes of the vocabulary
  // have no text.
  std::vector<std::optional<std::string>> token_text;
  std::vector<std::string> token_bytes;
  std::size_t vocab_size = 0;
};

}  // namespace kiln::tok
