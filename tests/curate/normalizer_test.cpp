#include <gtest/gtest.h>

#include "data/curate/normalizer.hpp"

namespace kiln::curate {
namespace {

TEST(Normalizer, ComposesToNfcAndFoldsWithNfkc) {
  NormalizeOptions options;
  EXPECT_EQ(normalize_text("Cafe\u0301", options).text, "Caf\u00e9");  // e + combining acute -> é
  EXPECT_EQ(normalize_text("\uFB01ne \uFF21", options).text, "\uFB01ne \uFF21");  // NFC keeps ligature, full-width A
  options.form = UnicodeForm::Nfkc;
  EXPECT_EQ(normalize_text("\uFB01ne \uFF21", options).text, "fine A");
}

TEST(Normalizer, CleansWhitespaceAndControls) {
  const NormalizeOptions options;
  EXPECT_EQ(normalize_text("  a\r\nb\rc\x01\x7f d\u00a0e\u200b  \n\n\n\nf\t \n", options).text, "a\nb\nc d e\n\nf");
  EXPECT_EQ(normalize_text("def f():\n    return 1", options).text, "def f():\n    return 1");  // indentation stays
}

TEST(Normalizer, EmptyAfterCleaningIsDropped) {
  EXPECT_EQ(normalize_text("", {}).reason, "empty");
  EXPECT_EQ(normalize_text(" \n\t\u200b\x02 ", {}).reason, "empty");
}

TEST(Normalizer, InvalidUtf8IsRepairedOrRejected) {
  NormalizeOptions options;
  const std::string bad = "ok \xff\xfe then \xe2\x82 end";
  const auto repaired = normalize_text(bad, options);
  EXPECT_TRUE(repaired.repaired);
  EXPECT_EQ(repaired.text, "ok \uFFFD\uFFFD then \uFFFD\uFFFD end");
  EXPECT_TRUE(is_valid_utf8(repaired.text));
  options.invalid_utf8 = InvalidUtf8Policy::Reject;
  EXPECT_EQ(normalize_text(bad, options).reason, "invalid_utf8");
}

}  // namespace
}  // namespace kiln::curate
