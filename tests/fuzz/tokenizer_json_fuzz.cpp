// tokenizer.json (data/tokenizer/tokenizer_json.*), through Tokenizer::from_json as
// Tokenizer::load calls it. An accepted tokenizer is then used as prepare and export use one:
// encode (added tokens, pre-tokenizer regexes, merges, post-processor), decode, hash and save;
// what kiln saves must load again with the same content.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "data/tokenizer/tokenizer.hpp"
#include "tests/fuzz/refusal_contract.hpp"

namespace {

// Touches every stage: ASCII words, digits, punctuation, whitespace runs, a special token,
// multi-byte UTF-8 and an invalid byte.
constexpr std::string_view kProbeText =
    "Hello world! 12345 <|endoftext|>  tabs\tand\nnewlines caf\xc3\xa9 \xe2\x82\xac \xff end";

void use_tokenizer(const kiln::tok::Tokenizer& tokenizer) {
  const auto ids = tokenizer.encode(kProbeText, /*add_special_tokens=*/true);
  for (const auto id : ids) kiln::fuzz::require(id < tokenizer.vocab_size(), "encode gave an id >= vocab_size");
  (void)tokenizer.decode(ids);
  (void)tokenizer.decode(ids, /*skip_special_tokens=*/true);
  (void)tokenizer.eos_id();
  const auto saved = tokenizer.to_json();
  const auto reloaded = kiln::tok::Tokenizer::from_json(saved, "saved tokenizer.json");
  kiln::fuzz::require(reloaded.content_hash() == tokenizer.content_hash(),
                      "the saved tokenizer.json loads back with a different content hash");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  kiln::fuzz::accept_or_refuse([&] {
    const auto tokenizer = kiln::tok::Tokenizer::from_json(text, "fuzz/tokenizer.json");
    use_tokenizer(tokenizer);
  });
  return 0;
}
