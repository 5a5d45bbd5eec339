#pragma once
// Learns a byte-level BPE from a corpus (the algorithm of `tokenizers`' BpeTrainer) and
// produces a Tokenizer whose tokenizer.json the `tokenizers` library loads and encodes
// identically to kiln.
//
// Documents are cut at special tokens (which are never merged into), pre-tokenized with the
// style's pipeline and counted as words, in parallel batches. Training then repeatedly merges
// the most frequent adjacent pair (ties: the smaller pair of ids, as `tokenizers` does),
// updating pair counts incrementally in only the words that hold the pair.
// Ids: the special tokens first, then the 256 byte symbols in code point order, then merges.
// Output: gpt2 style writes merges as "a b" strings; llama3 style writes pairs, sets
// ignore_merges, and prepends <|begin_of_text|> (when it is a special token) via
// TemplateProcessing.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/tokenizer/tokenizer.hpp"

namespace kiln::tok {

enum class PreTokenizerStyle { Gpt2, Llama3 };

struct BpeTrainOptions {
  std::size_t vocab_size = 8192;           // final size, 256 byte tokens and specials included
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  std::size_t min_frequency = 2;
  PreTokenizerStyle style = PreTokenizerStyle::Gpt2;
  // Every digit its own word (as Llama-1 and PaLM did), so numbers are spelled digit by digit
  // and arithmetic can generalise. Written as a standard Split step; HF tokenizers reads it.
  bool split_digits = false;
  int threads = 0;                         // 0: all cores
};

class BpeTrainer {
 public:
  // Throws kiln::Error for impossible options (a vocabulary smaller than the specials plus the
  // 256 bytes, an empty special token).
  explicit BpeTrainer(BpeTrainOptions options);
  // Feed documents (any number of calls); counts pre-tokenized words. Invalid UTF-8 is
  // replaced by U+FFFD first, as encode does.
  void add_text(std::string_view text);
  // Stops at vocab_size or when the best pair occurs fewer than min_frequency times.
  Tokenizer train() const;

 private:
  BpeTrainOptions options_;
  struct WordCounts;
  std::shared_ptr<WordCounts> counts_;
};

}  // namespace kiln::tok
