#include "data/curate/pii.hpp"

#include "data/tokenizer/regex.hpp"

namespace kiln::curate {

namespace {

// Local part and domain of an address as written in running text (RFC 5322's dot-atom
// subset); the top-level domain needs two letters so "a@b.c" version strings do not match.
constexpr std::string_view kEmail = R"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,})";
// Dotted quads with each part 0-255, not inside a longer run of digits and dots
// (version numbers like 1.2.3.4.5 are left alone), and full or compressed IPv6.
constexpr std::string_view kIp =
    R"((?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d]|\.\d))"
    R"(|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:]))"
    R"(|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}(?![\w:]))";

// Replaces every match of `pattern` in text with `placeholder`; returns the count.
std::size_t replace_all(const tok::Regex& pattern, std::string& text, std::string_view placeholder) {
  std::string out;
  std::size_t count = 0;
  std::size_t copied = 0;
  pattern.for_each_match(text, [&](std::size_t begin, std::size_t end) {
    out.append(text, copied, begin - copied);
    out.append(placeholder);
    copied = end;
    ++count;
  });
  if (count == 0) return 0;
  out.append(text, copied, std::string::npos);
  text.swap(out);
  return count;
}

}  // namespace

struct PiiRedactor::Patterns {
  tok::Regex email = tok::Regex::from_pcre2(kEmail);
  tok::Regex ip = tok::Regex::from_pcre2(kIp);
};

PiiRedactor::PiiRedactor(const PiiOptions& options) : options_(options), patterns_(std::make_unique<Patterns>()) {}
PiiRedactor::~PiiRedactor() = default;
PiiRedactor::PiiRedactor(PiiRedactor&&) noexcept = default;
PiiRedactor& PiiRedactor::operator=(PiiRedactor&&) noexcept = default;

PiiResult PiiRedactor::redact(std::string_view text) const {
  PiiResult result;
  result.text = std::string(text);
  // Cheap pre-checks keep the regex engine off the many documents without '@' or a digit '.'.
  if (options_.emails && text.find('@') != std::string_view::npos) {
    result.emails = replace_all(patterns_->email, result.text, options_.email_placeholder);
  }
  if (options_.ip_addresses && (text.find('.') != std::string_view::npos || text.find(':') != std::string_view::npos)) {
    result.ip_addresses = replace_all(patterns_->ip, result.text, options_.ip_placeholder);
  }
  return result;
}

}  // namespace kiln::curate
