#include "data/tokenizer/utf8.hpp"

namespace kiln::tok::utf8 {

namespace {

bool is_continuation(unsigned char byte) { return (byte & 0xC0U) == 0x80U; }

// Bounds of the second byte allowed after each lead byte (Unicode table 3-7): they exclude
// overlong forms, surrogates and code points above U+10FFFF.
struct LeadInfo {
  std::size_t length;  // 0: not a lead byte
  unsigned char second_min;
  unsigned char second_max;
};

LeadInfo lead_info(unsigned char lead) {
  if (lead < 0x80) return {1, 0, 0};
  if (lead < 0xC2) return {0, 0, 0};
  if (lead < 0xE0) return {2, 0x80, 0xBF};
  if (lead == 0xE0) return {3, 0xA0, 0xBF};
  if (lead == 0xED) return {3, 0x80, 0x9F};
  if (lead < 0xF0) return {3, 0x80, 0xBF};
  if (lead == 0xF0) return {4, 0x90, 0xBF};
  if (lead < 0xF4) return {4, 0x80, 0xBF};
  if (lead == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

// Number of bytes of the maximal ill-formed subpart at text[pos] (at least 1): the longest
// prefix of a well-formed sequence that the input starts with.
std::size_t ill_formed_length(std::string_view text, std::size_t pos) {
  const auto info = lead_info(static_cast<unsigned char>(text[pos]));
  if (info.length == 0) return 1;
  std::size_t length = 1;
  while (length < info.length && pos + length < text.size()) {
    const auto byte = static_cast<unsigned char>(text[pos + length]);
    const bool allowed = length == 1 ? (byte >= info.second_min && byte <= info.second_max)
                                     : is_continuation(byte);
    if (!allowed) break;
    ++length;
  }
  return length;
}

}  // namespace

std::size_t valid_sequence_length(std::string_view text, std::size_t pos) {
  const auto info = lead_info(static_cast<unsigned char>(text[pos]));
  if (info.length == 0 || pos + info.length > text.size()) return 0;
  if (info.length == 1) return 1;
  const auto second = static_cast<unsigned char>(text[pos + 1]);
  if (second < info.second_min || second > info.second_max) return 0;
  for (std::size_t i = 2; i < info.length; ++i) {
    if (!is_continuation(static_cast<unsigned char>(text[pos + i]))) return 0;
  }
  return info.length;
}

bool is_valid(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    // ASCII dominates real text: skip it eight bytes at a time.
    while (pos + 8 <= text.size()) {
      std::uint64_t block = 0;
      for (std::size_t i = 0; i < 8; ++i) {
        block |= static_cast<std::uint64_t>(static_cast<unsigned char>(text[pos + i])) << (8 * i);
      }
      if (block & 0x8080808080808080ULL) break;
      pos += 8;
    }
    if (pos >= text.size()) break;
    const std::size_t length = valid_sequence_length(text, pos);
    if (length == 0) return false;
    pos += length;
  }
  return true;
}

std::string_view repaired(std::string_view text, std::string& storage) {
  if (is_valid(text)) return text;
  storage.clear();
  storage.reserve(text.size() + 16);
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t length = valid_sequence_length(text, pos);
    if (length > 0) {
      storage.append(text.substr(pos, length));
      pos += length;
    } else {
      append(storage, kReplacementChar);
      pos += ill_formed_length(text, pos);
    }
  }
  return storage;
}

void append(std::string& out, char32_t code_point) {
  const auto cp = static_cast<std::uint32_t>(code_point);
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

char32_t next(std::string_view text, std::size_t& pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  std::size_t length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
  std::uint32_t cp = length == 1 ? lead : length == 2 ? (lead & 0x1FU) : length == 3 ? (lead & 0x0FU) : (lead & 0x07U);
  for (std::size_t i = 1; i < length && pos + i < text.size(); ++i) {
    cp = (cp << 6) | (static_cast<unsigned char>(text[pos + i]) & 0x3FU);
  }
  pos += length;
  return static_cast<char32_t>(cp);
}

char32_t previous(std::string_view text, std::size_t end, std::size_t& start) {
  start = end - 1;
  while (start > 0 && is_continuation(static_cast<unsigned char>(text[start]))) --start;
  std::size_t pos = start;
  return next(text, pos);
}

}  // namespace kiln::tok::utf8
