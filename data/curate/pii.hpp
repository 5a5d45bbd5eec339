#pragma once
// Stage 6, PII: e-mail addresses and IP addresses (v4 and v6) replaced by placeholders,
// with the number of replacements counted for the report. Patterns run with PCRE2 (JIT).
#include <memory>
#include <string>
#include <string_view>

namespace kiln::curate {

struct PiiOptions {
  bool enabled = true;
  bool emails = true;
  bool ip_addresses = true;
  std::string email_placeholder = "<EMAIL>";
  std::string ip_placeholder = "<IP_ADDRESS>";
};

struct PiiResult {
  std::string text;
  std::size_t emails = 0;
  std::size_t ip_addresses = 0;
  bool changed() const { return emails + ip_addresses > 0; }
};

class PiiRedactor {
 public:
  explicit PiiRedactor(const PiiOptions& options);
  ~PiiRedactor();
  PiiRedactor(PiiRedactor&&) noexcept;
  PiiRedactor& operator=(PiiRedactor&&) noexcept;
  PiiResult redact(std::string_view text) const;

 private:
  struct Patterns;
  PiiOptions options_;
  std::unique_ptr<Patterns> patterns_;
};

}  // namespace kiln::curate
