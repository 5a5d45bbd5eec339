// BPE training: ids layout, vocabulary size, determinism and a usable result.
#include <gtest/gtest.h>

#include <string>

#include "data/tokenizer/bpe_trainer.hpp"
#include "trainer/core/error.hpp"

namespace {

using namespace kiln::tok;

const char* kCorpus[] = {
    "the quick brown fox jumps over the lazy dog. The dog didn't care.",
    "def main():\n    return the_answer(42)\n",
    "日本語のテキスト and English text, numbers 12345 and 67890.",
    "the the the then there these those <|endoftext|> the end",
};

Tokenizer train(PreTokenizerStyle style, std::size_t vocab_size, bool split_digits = false) {
  BpeTrainOptions options;
  options.split_digits = split_digits;
  options.vocab_size = vocab_size;
  options.min_frequency = 1;
  options.style = style;
  options.special_tokens = {"<|endoftext|>", "<|begin_of_text|>"};
  options.threads = 2;
  BpeTrainer trainer(options);
  for (int repeat = 0; repeat < 3; ++repeat) {
    for (const char* text : kCorpus) trainer.add_text(text);
  }
  return trainer.train();
}

TEST(BpeTrainer, SpecialsFirstThenBytesThenMerges) {
  const auto tokenizer = train(PreTokenizerStyle::Gpt2, 300);
  EXPECT_EQ(tokenizer.vocab_size(), 300U);
  EXPECT_EQ(tokenizer.token_to_id("<|endoftext|>"), 0U);
  EXPECT_EQ(tokenizer.token_to_id("<|begin_of_text|>"), 1U);
  EXPECT_EQ(tokenizer.token_to_id("!"), 2U);  // the byte symbols in code point order
  EXPECT_EQ(tokenizer.token_to_id("Ġ"), std::optional<TokenId>(2 + 256 - 68 + 32));
  EXPECT_EQ(tokenizer.eos_id(), 0U);
}

TEST(BpeTrainer, TrainedTokenizerRoundTrips) {
  for (const auto style : {PreTokenizerStyle::Gpt2, PreTokenizerStyle::Llama3}) {
    const auto tokenizer = train(style, 320);
    const auto reloaded = Tokenizer::from_json(tokenizer.to_json(), "trained");
    for (const char* text : kCorpus) {
      const auto ids = tokenizer.encode(text);
      EXPECT_EQ(reloaded.encode(text), ids);
      EXPECT_EQ(tokenizer.decode(ids), text);
      EXPECT_LT(ids.size(), std::string(text).size());  // merges were learned and used
    }
    // Specials are never merged into: they stay single tokens.
    EXPECT_EQ(tokenizer.encode("<|endoftext|>"), (std::vector<TokenId>{0}));
  }
}

TEST(BpeTrainer, SplitDigitsSpellsNumbersDigitByDigit) {
  for (const auto style : {PreTokenizerStyle::Gpt2, PreTokenizerStyle::Llama3}) {
    const auto merged = train(style, 400);
    const auto split = train(style, 400, true);
    const std::string numbers = "numbers 12345 and 67890.";
    // Without the option the frequent numbers merge; with it, each digit is one token.
    EXPECT_LT(merged.encode(numbers, false).size(), split.encode(numbers, false).size());
    std::size_t digit_tokens = 0;
    for (const TokenId id : split.encode(numbers, false)) {
      const std::vector<TokenId> one = {id};
      const std::string text = split.decode(one);
      if (text.find_first_of("0123456789") == std::string::npos) continue;
      EXPECT_EQ(text.size(), 1U) << "token '" << text << "' holds more than one digit";
      ++digit_tokens;
    }
    EXPECT_EQ(digit_tokens, 10U);
    // The option travels in tokenizer.json.
    const auto reloaded = Tokenizer::from_json(split.to_json(), "split");
    EXPECT_EQ(reloaded.encode(numbers, false), split.encode(numbers, false));
    EXPECT_EQ(split.decode(split.encode(numbers, false)), numbers);
  }
}

TEST(BpeTrainer, Llama3StyleAddsBos) {
  const auto tokenizer = train(PreTokenizerStyle::Llama3, 300);
  EXPECT_EQ(tokenizer.encode("hi", true).front(), 1U);
  EXPECT_NE(tokenizer.to_json().find("TemplateProcessing"), std::string::npos);
}

TEST(BpeTrainer, IsDeterministic) {
  EXPECT_EQ(train(PreTokenizerStyle::Gpt2, 320).to_json(), train(PreTokenizerStyle::Gpt2, 320).to_json());
}

TEST(BpeTrainer, RejectsTooSmallVocabulary) {
  BpeTrainOptions options;
  options.vocab_size = 100;
  EXPECT_THROW(BpeTrainer{options}, kiln::Error);
}

}  // namespace
