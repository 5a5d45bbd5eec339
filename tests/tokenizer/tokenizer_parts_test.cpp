// The building blocks of the tokenizer: UTF-8 repair, the GPT-2 byte map, the regex
// translation and BPE merging.
#include <gtest/gtest.h>

#include <string>

#include "data/tokenizer/bpe_model.hpp"
#include "data/tokenizer/byte_level.hpp"
#include "data/tokenizer/pre_tokenizer.hpp"
#include "data/tokenizer/regex.hpp"
#include "data/tokenizer/utf8.hpp"
#include "trainer/core/error.hpp"

namespace {

using namespace kiln::tok;

std::string repair(std::string_view text) {
  std::string storage;
  return std::string(utf8::repaired(text, storage));
}

TEST(Utf8, ValidTextIsReturnedAsIs) {
  std::string storage;
  const std::string text = "héllo 日本 😀";
  EXPECT_EQ(utf8::repaired(text, storage).data(), text.data());
}

TEST(Utf8, RepairMatchesPythonErrorsReplace) {
  // Expected values from Python: bytes.decode("utf-8", errors="replace").
  EXPECT_EQ(repair("\xff"), "\uFFFD");
  EXPECT_EQ(repair("abc\x80" "def"), "abc\uFFFD" "def");
  EXPECT_EQ(repair("\xc3\x28"), "\uFFFD(");
  EXPECT_EQ(repair("\xe2\x82"), "\uFFFD");              // truncated: one replacement
  EXPECT_EQ(repair("\xe2\x82\x28"), "\uFFFD(");
  EXPECT_EQ(repair("\xed\xa0\x80"), "\uFFFD\uFFFD\uFFFD");  // a surrogate: each byte
  EXPECT_EQ(repair("\xc0\xaf"), "\uFFFD\uFFFD");        // overlong
  EXPECT_EQ(repair("\xf4\x90\x80\x80"), "\uFFFD\uFFFD\uFFFD\uFFFD");  // above U+10FFFF
  EXPECT_EQ(repair("\xf0\x9f\x98\x80\xf0"), "😀\uFFFD");
}

TEST(ByteLevel, Gpt2Map) {
  EXPECT_EQ(byte_level::byte_to_char(' '), U'\u0120');   // Ġ
  EXPECT_EQ(byte_level::byte_to_char('\n'), U'\u010A');  // Ċ
  EXPECT_EQ(byte_level::byte_to_char('a'), U'a');
  EXPECT_EQ(byte_level::byte_to_char(0xAD), U'\u0143');  // the last shifted byte
  for (unsigned byte = 0; byte < 256; ++byte) {
    EXPECT_EQ(byte_level::char_to_byte(byte_level::byte_to_char(static_cast<std::uint8_t>(byte))), byte);
  }
  EXPECT_EQ(byte_level::encode(" hi\n"), "Ġhi\u010A");
  EXPECT_EQ(byte_level::decode("Ġhi\u010A"), " hi\n");
  EXPECT_FALSE(byte_level::decode("a b"));  // a raw space is not a byte symbol
}

std::vector<std::string> words(const PreTokenizer& pre, std::string_view text) {
  std::vector<std::string> out;
  pre.for_each_word(text, [&](std::string_view word) { out.emplace_back(word); });
  return out;
}

TEST(PreTokenizer, Gpt2Pattern) {
  const PreTokenizer pre({PreTokenizerStep::byte_level(false, true, true)}, false);
  EXPECT_EQ(words(pre, "Hello world's  end\n"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " end", "\n"}));
  // \s is Unicode White_Space, as in Oniguruma: U+180E is not a space, U+3000 is.
  EXPECT_EQ(words(pre, "a\u180e b\u3000c"), (std::vector<std::string>{"a", "\u180e", " b", "\u3000", "c"}));
}

TEST(PreTokenizer, Llama3PatternIsCaseInsensitiveForContractions) {
  const PreTokenizer pre({PreTokenizerStep::split(std::string(kLlama3Pattern), true),
                          PreTokenizerStep::byte_level(false, true, false)},
                         true);
  EXPECT_EQ(words(pre, "I'M 12345"), (std::vector<std::string>{"I", "'M", " ", "123", "45"}));
}

TEST(PreTokenizer, AddPrefixSpace) {
  const PreTokenizer pre({PreTokenizerStep::byte_level(true, true, true)}, false);
  EXPECT_EQ(words(pre, "hi"), (std::vector<std::string>{" hi"}));
  EXPECT_EQ(words(pre, " hi"), (std::vector<std::string>{" hi"}));
}

TEST(Regex, TranslatesOnigurumaEscapes) {
  EXPECT_NE(translate_oniguruma("\\s").find("\\x{3000}"), std::string::npos);
  EXPECT_EQ(translate_oniguruma("\\h").substr(0, 4), "[0-9");
  EXPECT_EQ(translate_oniguruma("[\\]\\d]"), "[\\]\\d]");
  EXPECT_THROW((void)translate_oniguruma("[\\S]"), kiln::Error);
}

TEST(Regex, LiteralPatternsMatchLiterally) {
  const auto regex = Regex::from_literal("a.b\\E");
  std::size_t begin = 0;
  std::size_t end = 0;
  EXPECT_FALSE(regex.find("axb\\E", 0, begin, end));
  ASSERT_TRUE(regex.find("x a.b\\E", 0, begin, end));
  EXPECT_EQ(begin, 2U);
  EXPECT_EQ(end, 7U);
}

TEST(BpeModel, LowestRankMergesFirst) {
  // "abc": merges (b c) rank 0, (a b) rank 1 -> "a" + "bc", never "ab" + "c".
  BpeModel model({{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}}, {{"b", "c"}, {"a", "b"}}, {});
  std::vector<TokenId> ids;
  model.encode_word("abc", ids);
  EXPECT_EQ(ids, (std::vector<TokenId>{0, 4}));
  ids.clear();
  model.encode_word("abab", ids);
  EXPECT_EQ(ids, (std::vector<TokenId>{3, 3}));
}

TEST(BpeModel, IgnoreMergesTakesWholeWords) {
  BpeOptions options;
  options.ignore_merges = true;
  // "abc" is in the vocabulary although no merge makes it.
  BpeModel model({{"a", 0}, {"b", 1}, {"c", 2}, {"abc", 3}}, {}, options);
  std::vector<TokenId> ids;
  model.encode_word("abc", ids);
  EXPECT_EQ(ids, (std::vector<TokenId>{3}));
}

TEST(BpeModel, UnknownBytesUseUnkOrAreDropped) {
  BpeModel dropping({{"a", 0}}, {}, {});
  std::vector<TokenId> ids;
  dropping.encode_word("axxa", ids);
  EXPECT_EQ(ids, (std::vector<TokenId>{0, 0}));
  BpeOptions fuse;
  fuse.unk_token = "<unk>";
  fuse.fuse_unk = true;
  BpeModel fusing({{"a", 0}, {"<unk>", 1}}, {}, fuse);
  ids.clear();
  fusing.encode_word("axxa", ids);
  EXPECT_EQ(ids, (std::vector<TokenId>{0, 1, 0}));
}

}  // namespace
