#include "data/tokenizer/tokenizer.hpp"

#include <array>

#include "data/tokenizer/byte_level.hpp"
#include "data/tokenizer/tokenizer_impl.hpp"
#include "data/tokenizer/tokenizer_json.hpp"
#include "data/tokenizer/utf8.hpp"
#include "trainer/core/atomic_file.hpp"
#include "trainer/core/checksum.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"

namespace kiln::tok {

// ---- Impl -----------------------------------------------------------------------------------

Tokenizer::Impl::Impl(BpeModel bpe_model, const std::vector<AddedToken>& added_tokens,
                      PreTokenizer pre, PostProcessor post, std::optional<ByteLevelDecoder> byte_level_decoder)
    : model(std::move(bpe_model)), pre_tokenizer(std::move(pre)), post_processor(std::move(post)),
      decoder(byte_level_decoder) {
  const auto model_lookup = [this](std::string_view content) { return model.token_to_id(content); };
  for (const auto& token : added_tokens) added.add(token, model_lookup, model.entries());
  added.finish_adding();

  vocab_size = model.id_limit();
  for (const auto& token : added.tokens()) vocab_size = std::max<std::size_t>(vocab_size, token.id + 1);
  token_text.resize(vocab_size);
  token_bytes.resize(vocab_size);
  for (TokenId id = 0; id < vocab_size; ++id) {
    if (const auto* token = added.token_with_id(id)) {
      token_text[id] = token->content;
    } else if (const auto* text = model.id_to_token(id)) {
      token_text[id] = *text;
    }
    if (!token_text[id]) continue;
    // The ByteLevel decoder maps a token back to bytes when every character is a byte symbol
    // and otherwise keeps its text as is (e.g. an added token containing a space).
    auto bytes = byte_level::decode(*token_text[id]);
    token_bytes[id] = bytes ? std::move(*bytes) : *token_text[id];
  }
}

void Tokenizer::Impl::encode_into(std::string_view text, std::vector<TokenId>& ids) const {
  thread_local std::vector<TextPiece> pieces;
  added.split(text, pieces);
  const auto encode_word = [&](std::string_view word) { model.encode_word(word, ids); };
  for (const auto& piece : pieces) {
    if (piece.token) {
      ids.push_back(*piece.token);
    } else {
      pre_tokenizer.for_each_word(text.substr(piece.begin, piece.end - piece.begin), encode_word);
    }
  }
}

// ---- Tokenizer ------------------------------------------------------------------------------

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  return from_json(read_text_file(path, "tokenizer"), path.string());
}

Tokenizer Tokenizer::from_json(std::string_view json_text, std::string_view source_name) {
  return Tokenizer(parse_tokenizer_json(json_text, source_name));
}

std::string Tokenizer::to_json() const { return write_tokenizer_json(*impl_); }

void Tokenizer::save(const std::filesystem::path& path) const { write_file_atomically(path, to_json()); }

std::vector<TokenId> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::string repaired_storage;
  const std::string_view valid = utf8::repaired(text, repaired_storage);
  std::vector<TokenId> ids;
  ids.reserve(valid.size() / 3 + 4);
  const auto& post = impl_->post_processor;
  if (add_special_tokens) ids.insert(ids.end(), post.prefix().begin(), post.prefix().end());
  impl_->encode_into(valid, ids);
  if (add_special_tokens) ids.insert(ids.end(), post.suffix().begin(), post.suffix().end());
  return ids;
}

std::string Tokenizer::decode(std::span<const TokenId> ids, bool skip_special_tokens) const {
  std::string out;
  bool first = true;
  for (const TokenId id : ids) {
    if (id >= impl_->vocab_size || !impl_->token_text[id]) {
      fail("token id {} is not in the vocabulary (vocabulary size {})", id, impl_->vocab_size);
    }
    if (skip_special_tokens && impl_->added.is_special(id)) continue;
    if (impl_->decoder) {
      out += impl_->token_bytes[id];
    } else {
      if (!first) out += ' ';  // "decoder": null joins the tokens' text with spaces
      out += *impl_->token_text[id];
    }
    first = false;
  }
  return out;
}

std::size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<TokenId> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = impl_->added.id_of(token)) return id;
  return impl_->model.token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(TokenId id) const {
  if (id >= impl_->vocab_size) return std::nullopt;
  return impl_->token_text[id];
}

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return impl_->added.tokens(); }

std::optional<TokenId> Tokenizer::eos_id() const {
  static constexpr std::array<std::string_view, 5> kEndOfText = {"<|endoftext|>", "<|end_of_text|>", "</s>",
                                                                 "<|eot_id|>", "<eos>"};
  for (const auto candidate : kEndOfText) {
    if (auto id = token_to_id(candidate)) return id;
  }
  return std::nullopt;
}

std::uint64_t Tokenizer::content_hash() const { return xxh3_64(to_json()); }

}  // namespace kiln::tok
