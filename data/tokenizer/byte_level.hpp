#pragma once
// GPT-2's reversible byte <-> Unicode map. Byte-level BPE vocabularies never contain raw
// bytes: each byte is shown as one printable code point (printable Latin-1 bytes stand for
// themselves, the others are shifted to U+0100..U+0143), so every token is valid UTF-8.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kiln::tok::byte_level {

// The code point that stands for `byte`.
char32_t byte_to_char(std::uint8_t byte);
// The byte a code point stands for; nullopt for code points outside the 256 of the map.
std::optional<std::uint8_t> char_to_byte(char32_t code_point);

// Raw bytes -> their byte-level spelling (what the vocabulary stores).
std::string encode(std::string_view bytes);
// Byte-level spelling -> raw bytes; nullopt when a code point is outside the map (the
// token is then not a byte-level token, e.g. an added token with a space).
std::optional<std::string> decode(std::string_view token);

// The 256 one-character tokens in code point order: the order `tokenizers`' BpeTrainer
// gives its initial alphabet ids in.
std::array<std::uint8_t, 256> bytes_in_char_order();

}  // namespace kiln::tok::byte_level
