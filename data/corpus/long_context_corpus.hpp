#pragma once
// The built-in corpus's long-context part (`kiln corpus --long-context LENGTHS`): held-out
// passkey and in-context-language tasks at chosen prompt lengths, so that `kiln eval --tasks`
// can report accuracy by context length, and training documents of the same two kinds so
// that a model can learn their formats (never their held-out keys, languages or sentences:
// data/corpus/passkey_task.hpp and invented_language.hpp say how those are reserved).
//
// Lengths are in characters, not tokens: the corpus exists before any tokenizer, and a
// character count means the same thing for every tokenizer. kiln eval reports each prompt's
// real token count next to its length bucket. Prompts come out a little longer than asked
// (filler and examples are added whole); an in-context-language prompt is never shorter than
// its grammar, dictionary and two examples (about 1100 characters).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/corpus/builtin_corpus.hpp"

namespace kiln::data {

inline constexpr std::string_view kPasskeyKind = "passkey";
inline constexpr std::string_view kLanguageKind = "language";

// Held-out task `index` of `kind` (kPasskeyKind or kLanguageKind) with a prompt of about
// `context_chars` characters; a function of (kind, context_chars, index, seed) only.
CorpusTask long_context_task(std::string_view kind, std::uint64_t context_chars, std::uint64_t index,
                             std::uint64_t seed);

// True for the documents of `kiln corpus --out` that are long-context ones: about `percent`
// in a hundred, chosen by (seed, index) so that every other document stays what
// BuiltinCorpus::document gives.
bool is_long_context_document(std::uint64_t index, std::uint64_t seed, int percent);

// A training document of kind passkey or language (half each), at most about max_chars long
// (the length is drawn uniformly up to it), the answer written after the prompt.
CorpusDocument long_context_document(std::uint64_t index, std::uint64_t seed, std::uint64_t max_chars);

// "1000,4k,16000" -> {1000, 4000, 16000} ("k" = thousand characters). Throws kiln::Error
// naming the bad entry; the list must not be empty and every length must be at least 100.
std::vector<std::uint64_t> parse_context_lengths(std::string_view text);

}  // namespace kiln::data
