#include "trainer/core/utf8.hpp"

#include <utf8proc.h>

namespace kiln {

namespace {

// Walks text one code point at a time; stops at the first sequence utf8proc refuses or that
// is_bad calls bad.
template <typename IsBad>
std::size_t first_bad_code_point(std::string_view text, IsBad is_bad) {
  std::size_t offset = 0;
  while (offset < text.size()) {
    utf8proc_int32_t codepoint = 0;
    const auto length = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + offset),
                                         static_cast<utf8proc_ssize_t>(text.size() - offset), &codepoint);
    if (length <= 0 || is_bad(codepoint)) return offset;
    offset += static_cast<std::size_t>(length);
  }
  return text.size();
}

}  // namespace

std::size_t first_invalid_utf8(std::string_view text) {
  return first_bad_code_point(text, [](utf8proc_int32_t) { return false; });
}

std::size_t first_invalid_utf8_or_control(std::string_view text) {
  return first_bad_code_point(text, [](utf8proc_int32_t codepoint) { return codepoint < 0x20 || codepoint == 0x7f; });
}

}  // namespace kiln
