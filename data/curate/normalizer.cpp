#include "data/curate/normalizer.hpp"

#include <simdjson.h>
#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "data/curate/text_units.hpp"
#include "trainer/core/error.hpp"

namespace kiln::curate {

namespace {

bool is_ascii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

std::string unicode_normalize(std::string_view text, UnicodeForm form) {
  // Pure ASCII is already in every normal form; most web text is, so skip the copy.
  if (form == UnicodeForm::None || is_ascii(text)) return std::string(text);
  auto options = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  if (form == UnicodeForm::Nfkc) options = static_cast<utf8proc_option_t>(options | UTF8PROC_COMPAT);
  utf8proc_uint8_t* mapped = nullptr;
  const auto length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                   static_cast<utf8proc_ssize_t>(text.size()), &mapped, options);
  if (length < 0) fail("unicode normalisation failed: {}", utf8proc_errmsg(length));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
  return std::string(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(length));
}

bool is_dropped_char(char32_t c) {
  if (c < 0x20) return c != '\n' && c != '\t';
  if (c == 0x7F || (c >= 0x80 && c < 0xA0)) return true;
  return c == 0x200B || c == 0x200C || c == 0x200D || c == 0x2060 || c == 0xFEFF || c == 0xAD;
}

bool is_space_like(char32_t c) {
  return c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F || c == 0x3000;
}

// One pass over the code points: line endings, controls, spaces.
std::string clean_characters(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t offset = 0;
  while (offset < text.size()) {
    const std::size_t at = offset;
    const char32_t c = next_code_point(text, offset);
    if (c == '\r') {
      out.push_back('\n');
      if (offset < text.size() && text[offset] == '\n') ++offset;
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
      out.push_back('\n');
    } else if (is_space_like(c)) {
      out.push_back(' ');
    } else if (!is_dropped_char(c)) {
      out.append(text.substr(at, offset - at));
    }
  }
  return out;
}

// Trailing spaces off each line, at most max_blank empty lines in a row, stripped ends.
std::string tidy_lines(std::string_view text, int max_blank) {
  std::string out;
  out.reserve(text.size());
  int blank_run = 0;
  std::vector<std::string_view> lines;
  split_lines(text, lines);
  for (std::string_view line : lines) {
    line = rstrip(line);
    if (line.empty()) {
      if (out.empty() || (max_blank >= 0 && blank_run >= max_blank)) continue;
      ++blank_run;
    } else {
      blank_run = 0;
    }
    out.append(line);
    out.push_back('\n');
  }
  return std::string(strip(out));
}

}  // namespace

bool is_valid_utf8(std::string_view text) { return simdjson::validate_utf8(text.data(), text.size()); }

std::string repair_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t offset = 0;
  while (offset < text.size()) {
    utf8proc_int32_t code_point = 0;
    const auto length = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + offset),
                                         static_cast<utf8proc_ssize_t>(text.size() - offset), &code_point);
    if (length <= 0) {
      out.append("\xEF\xBF\xBD");
      ++offset;
      continue;
    }
    out.append(text.substr(offset, static_cast<std::size_t>(length)));
    offset += static_cast<std::size_t>(length);
  }
  return out;
}

NormalizeResult normalize_text(std::string_view text, const NormalizeOptions& options) {
  NormalizeResult result;
  std::string repaired;
  if (!is_valid_utf8(text)) {
    if (options.invalid_utf8 == InvalidUtf8Policy::Reject) {
      result.reason = "invalid_utf8";
      return result;
    }
    repaired = repair_utf8(text);
    text = repaired;
    result.repaired = true;
  }
  result.text = unicode_normalize(text, options.form);
  if (options.clean_whitespace) result.text = tidy_lines(clean_characters(result.text), options.max_blank_lines);
  if (strip(result.text).empty()) result.reason = "empty";
  return result;
}

}  // namespace kiln::curate
