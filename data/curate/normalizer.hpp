#pragma once
// Stage 1, normalisation: invalid UTF-8 repaired (each bad byte becomes U+FFFD) or the
// document rejected; Unicode NFC (or NFKC); control characters removed (tab and newline
// kept), "\r\n" and lone "\r" made "\n", exotic spaces made ' ', zero-width characters
// and byte-order marks dropped, trailing spaces of each line removed, runs of blank lines
// shortened, and the document stripped. Indentation inside lines is kept (code).
#include <string>
#include <string_view>

namespace kiln::curate {

enum class UnicodeForm { None, Nfc, Nfkc };
enum class InvalidUtf8Policy { Repair, Reject };

struct NormalizeOptions {
  bool enabled = true;
  UnicodeForm form = UnicodeForm::Nfc;
  InvalidUtf8Policy invalid_utf8 = InvalidUtf8Policy::Repair;
  bool clean_whitespace = true;
  int max_blank_lines = 1;  // consecutive empty lines kept; < 0 = no limit
};

// Replaces every byte that does not start a valid UTF-8 sequence with U+FFFD.
std::string repair_utf8(std::string_view text);
bool is_valid_utf8(std::string_view text);

struct NormalizeResult {
  std::string_view reason;  // "invalid_utf8", "empty", or "" when the text is kept
  std::string text;
  bool repaired = false;
};

NormalizeResult normalize_text(std::string_view text, const NormalizeOptions& options);

}  // namespace kiln::curate
