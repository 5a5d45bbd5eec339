#pragma once
// Learns a byte-level BPE from a corpus (the algorithm of `tokenizers`' BpeTrainer) and
// produces a Tokenizer whose tokenizer.json the `tokenizers` library loads and encodes
// identically to kiln.
#include <cstddef>
#include <string>
#include <vector>

#include "data/tokenizer/tokenizer.hpp"

namespace kiln::tok {

enum class PreTokenizerStyle { Gpt2, Llama3 };

struct BpeTrainOptions {
  std::size_t vocab_size = 8192;           // final size, 256 byte tokens and specials included
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  std::size_t min_frequency = 2;
  PreTokenizerStyle style = PreTokenizerStyle::Gpt2;
  int threads = 0;                         // 0: all cores
};

class BpeTrainer {
 public:
  explicit BpeTrainer(BpeTrainOptions options);
  // Feed documents (any number of calls); counts pre-tokenized words.
  void add_text(std::string_view text);
  Tokenizer train() const;

 private:
  BpeTrainOptions options_;
  struct WordCounts;
  std::shared_ptr<WordCounts> counts_;
};

}  // namespace kiln::tok
