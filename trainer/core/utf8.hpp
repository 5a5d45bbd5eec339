#pragma once
// UTF-8 validity, for text kiln reads from users' files (records, recipe fields).
#include <cstddef>
#include <string_view>

namespace kiln {

// Byte offset of the first invalid UTF-8 sequence in text; text.size() when it is all valid.
std::size_t first_invalid_utf8(std::string_view text);

// Byte offset of the first invalid UTF-8 sequence or ASCII control character (U+0000..U+001F,
// U+007F); text.size() when there is none. For single-line values such as paths and names.
std::size_t first_invalid_utf8_or_control(std::string_view text);

}  // namespace kiln
