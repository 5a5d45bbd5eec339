#include "data/tokenizer/byte_level.hpp"

#include <algorithm>

#include "data/tokenizer/utf8.hpp"

namespace kiln::tok::byte_level {

namespace {

bool stands_for_itself(unsigned byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
}

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::int16_t, 0x144> to_byte{};  // every mapped code point is below U+0144
  Tables() {
    to_byte.fill(-1);
    unsigned shifted = 0;
    for (unsigned byte = 0; byte < 256; ++byte) {
      const char32_t cp = stands_for_itself(byte) ? static_cast<char32_t>(byte) : static_cast<char32_t>(256 + shifted++);
      to_char[byte] = cp;
      to_byte[cp] = static_cast<std::int16_t>(byte);
    }
  }
};

const Tables& tables() {
  static const Tables instance;
  return instance;
}

}  // namespace

char32_t byte_to_char(std::uint8_t byte) { return tables().to_char[byte]; }

std::optional<std::uint8_t> char_to_byte(char32_t code_point) {
  if (code_point >= tables().to_byte.size()) return std::nullopt;
  const auto byte = tables().to_byte[code_point];
  if (byte < 0) return std::nullopt;
  return static_cast<std::uint8_t>(byte);
}

std::string encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char byte : bytes) utf8::append(out, byte_to_char(static_cast<std::uint8_t>(byte)));
  return out;
}

std::optional<std::string> decode(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  std::size_t pos = 0;
  while (pos < token.size()) {
    if (utf8::valid_sequence_length(token, pos) == 0) return std::nullopt;
    const auto byte = char_to_byte(utf8::next(token, pos));
    if (!byte) return std::nullopt;
    out.push_back(static_cast<char>(*byte));
  }
  return out;
}

std::array<std::uint8_t, 256> bytes_in_char_order() {
  std::array<std::uint8_t, 256> order{};
  for (unsigned byte = 0; byte < 256; ++byte) order[byte] = static_cast<std::uint8_t>(byte);
  std::sort(order.begin(), order.end(),
            [](std::uint8_t a, std::uint8_t b) { return byte_to_char(a) < byte_to_char(b); });
  return order;
}

}  // namespace kiln::tok::byte_level
