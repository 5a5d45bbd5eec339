#include "data/tokenizer/bpe_trainer.hpp"

#include <algorithm>
#include <array>
#include <queue>
#include <thread>
#include <unordered_map>

#include "data/tokenizer/byte_level.hpp"
#include "data/tokenizer/tokenizer_impl.hpp"
#include "data/tokenizer/utf8.hpp"
#include "trainer/core/error.hpp"

namespace kiln::tok {

namespace {

constexpr std::size_t kBatchBytes = 32U << 20;  // text buffered before a parallel count
constexpr std::string_view kBeginOfText = "<|begin_of_text|>";

struct TransparentHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
// Heterogeneous lookup: counting a word seen before allocates nothing.
using WordCountMap = std::unordered_map<std::string, std::uint64_t, TransparentHash, std::equal_to<>>;

constexpr std::string_view kOneDigit = "\\p{N}";

PreTokenizer pre_tokenizer_for(PreTokenizerStyle style, bool split_digits) {
  std::vector<PreTokenizerStep> steps;
  if (style == PreTokenizerStyle::Llama3) {
    std::string pattern(kLlama3Pattern);
    constexpr std::string_view kDigitRun = "\\p{N}{1,3}";  // Llama-3 groups up to 3 digits
    if (split_digits) pattern.replace(pattern.find(kDigitRun), kDigitRun.size(), kOneDigit);
    steps.push_back(PreTokenizerStep::split(std::move(pattern), true));
    steps.push_back(PreTokenizerStep::byte_level(false, true, false));
    return PreTokenizer(std::move(steps), true);
  }
  if (split_digits) steps.push_back(PreTokenizerStep::split(std::string(kOneDigit), true));
  steps.push_back(PreTokenizerStep::byte_level(false, true, true));
  return PreTokenizer(std::move(steps), split_digits);
}

}  // namespace

// Pre-tokenized words and how often each occurs, plus the text waiting to be counted.
struct BpeTrainer::WordCounts {
  PreTokenizer pre_tokenizer;
  TokenTrie specials;  // special tokens are cut out of the training text, never merged into
  WordCountMap counts;
  std::vector<std::string> batch;
  std::size_t batch_bytes = 0;

  void count_text(std::string_view text, WordCountMap& into) const {
    std::size_t from = 0;
    std::size_t begin = 0;
    std::size_t end = 0;
    const auto count_word = [&](std::string_view word) {
      if (const auto it = into.find(word); it != into.end()) {
        ++it->second;
      } else {
        into.emplace(word, 1);
      }
    };
    while (from < text.size()) {
      if (!specials.find(text, from, begin, end)) begin = end = text.size();
      pre_tokenizer.for_each_word(text.substr(from, begin - from), count_word);
      from = end;
    }
  }

  void flush(int threads) {
    if (batch.empty()) return;
    const std::size_t workers = std::min<std::size_t>(static_cast<std::size_t>(threads), batch.size());
    std::vector<WordCountMap> partial(workers);
    std::vector<std::thread> pool;
    for (std::size_t w = 0; w < workers; ++w) {
      pool.emplace_back([&, w] {
        for (std::size_t i = w; i < batch.size(); i += workers) count_text(batch[i], partial[w]);
      });
    }
    for (auto& thread : pool) thread.join();
    for (auto& part : partial) {
      for (auto& [word, count] : part) counts[word] += count;
    }
    batch.clear();
    batch_bytes = 0;
  }
};

BpeTrainer::BpeTrainer(BpeTrainOptions options) : options_(std::move(options)), counts_(std::make_shared<WordCounts>()) {
  if (options_.threads <= 0) options_.threads = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  std::vector<std::string> unique_specials;
  for (const auto& special : options_.special_tokens) {
    if (special.empty()) fail("a special token cannot be empty");
    if (std::find(unique_specials.begin(), unique_specials.end(), special) == unique_specials.end()) {
      unique_specials.push_back(special);
    }
  }
  options_.special_tokens = unique_specials;
  const std::size_t minimum = options_.special_tokens.size() + 256;
  if (options_.vocab_size < minimum) {
    fail("vocab size {} is too small: the {} special tokens and the 256 byte tokens need {}", options_.vocab_size,
         options_.special_tokens.size(), minimum);
  }
  counts_->pre_tokenizer = pre_tokenizer_for(options_.style, options_.split_digits);
  for (std::size_t i = 0; i < options_.special_tokens.size(); ++i) {
    counts_->specials.insert(options_.special_tokens[i], static_cast<TokenId>(i));
  }
}

void BpeTrainer::add_text(std::string_view text) {
  std::string repaired;
  const auto valid = utf8::repaired(text, repaired);
  counts_->batch_bytes += valid.size();
  counts_->batch.emplace_back(valid);
  if (counts_->batch_bytes >= kBatchBytes) counts_->flush(options_.threads);
}

namespace {

std::uint64_t pack(TokenId left, TokenId right) { return (std::uint64_t{left} << 32) | right; }
TokenId left_of(std::uint64_t pair) { return static_cast<TokenId>(pair >> 32); }
TokenId right_of(std::uint64_t pair) { return static_cast<TokenId>(pair & 0xFFFFFFFFU); }

struct Word {
  std::vector<TokenId> symbols;
  std::int64_t count;
};

// A pair waiting in the queue with the count it had when queued (possibly stale).
struct Candidate {
  std::int64_t count;
  std::uint64_t pair;
};
// Most frequent first; among equals the smaller (left, right) ids, as `tokenizers` does.
struct CandidateOrder {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.count != b.count ? a.count < b.count : a.pair > b.pair;
  }
};

// The merge loop over word types. Pair counts stay exact: each replacement adjusts only the
// pairs on its two sides. where_[pair] lists the words that may hold the pair (stale entries
// are harmless); the queue holds (count, pair) snapshots, refreshed when popped stale.
class MergeLearner {
 public:
  MergeLearner(std::vector<Word> words, std::vector<std::string> vocab, std::size_t target_size,
               std::uint64_t min_frequency)
      : words_(std::move(words)), vocab_(std::move(vocab)), target_size_(target_size),
        min_frequency_(static_cast<std::int64_t>(min_frequency)), visited_(words_.size(), 0) {
    for (std::size_t i = 0; i < vocab_.size(); ++i) id_of_[vocab_[i]] = static_cast<TokenId>(i);
    for (std::uint32_t w = 0; w < words_.size(); ++w) add_pairs(w);
    for (const auto& [pair, count] : pair_counts_) queue_.push({count, pair});
  }

  void run() {
    while (vocab_.size() < target_size_ && !queue_.empty()) {
      const Candidate top = queue_.top();
      queue_.pop();
      const std::int64_t current = count_of(top.pair);
      if (current != top.count) {
        if (current > 0) queue_.push({current, top.pair});
        continue;
      }
      if (current < 1 || current < min_frequency_) break;
      apply(top.pair);
    }
  }

  std::vector<std::string>& vocab() { return vocab_; }
  std::vector<std::pair<std::string, std::string>>& merges() { return merges_; }

 private:
  std::int64_t count_of(std::uint64_t pair) const {
    const auto it = pair_counts_.find(pair);
    return it == pair_counts_.end() ? 0 : it->second;
  }

  // Counts word w's pairs and records w under each.
  void add_pairs(std::uint32_t w) {
    const auto& word = words_[w];
    for (std::size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      const auto pair = pack(word.symbols[i], word.symbols[i + 1]);
      pair_counts_[pair] += word.count;
      auto& where = where_[pair];
      if (where.empty() || where.back() != w) where.push_back(w);
    }
  }

  void change(std::uint64_t pair, std::int64_t delta) { pair_counts_[pair] += delta; }

  // A pair formed by the new token: counted, and word w recorded as holding it.
  void gain(std::uint64_t pair, std::int64_t count, std::uint32_t w) {
    pair_counts_[pair] += count;
    auto& where = where_[pair];
    if (where.empty() || where.back() != w) where.push_back(w);
    touched_.push_back(pair);
  }

  // Replaces every (left, right) in word w, left to right, by `result`, and updates the
  // counts of the pairs around each replacement (the pair itself is dropped by the caller).
  void merge_in_word(std::uint32_t w, TokenId left, TokenId right, TokenId result) {
    auto& symbols = words_[w].symbols;
    const std::int64_t count = words_[w].count;
    std::size_t out = 0;
    std::size_t i = 0;
    while (i < symbols.size()) {
      if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
        // symbols[out - 1] is already final (maybe a `result` just made); symbols[i + 2] is not.
        if (out > 0) {
          change(pack(symbols[out - 1], left), -count);
          gain(pack(symbols[out - 1], result), count, w);
        }
        if (i + 2 < symbols.size()) {
          change(pack(right, symbols[i + 2]), -count);
          gain(pack(result, symbols[i + 2]), count, w);
        }
        symbols[out++] = result;
        i += 2;
      } else {
        symbols[out++] = symbols[i++];
      }
    }
    symbols.resize(out);
  }

  void apply(std::uint64_t pair) {
    const std::string& left = vocab_[left_of(pair)];
    const std::string& right = vocab_[right_of(pair)];
    merges_.emplace_back(left, right);
    std::string joined = left + right;
    TokenId result = 0;
    if (const auto it = id_of_.find(joined); it != id_of_.end()) {
      result = it->second;  // the same string made by another pair keeps its id
    } else {
      result = static_cast<TokenId>(vocab_.size());
      id_of_.emplace(joined, result);
      vocab_.push_back(std::move(joined));
    }
    ++stamp_;
    touched_.clear();
    const std::vector<std::uint32_t> candidates = std::move(where_[pair]);
    where_.erase(pair);
    for (const std::uint32_t w : candidates) {
      if (visited_[w] == stamp_) continue;
      visited_[w] = stamp_;
      merge_in_word(w, left_of(pair), right_of(pair), result);
    }
    // Greedy left-to-right replacement leaves no (left, right) pair behind.
    pair_counts_.erase(pair);
    std::sort(touched_.begin(), touched_.end());
    touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
    for (const auto touched : touched_) {
      if (const auto count = count_of(touched); count > 0) queue_.push({count, touched});
    }
  }

  std::vector<Word> words_;
  std::vector<std::string> vocab_;
  std::unordered_map<std::string, TokenId> id_of_;
  std::vector<std::pair<std::string, std::string>> merges_;
  std::size_t target_size_;
  std::int64_t min_frequency_;
  std::unordered_map<std::uint64_t, std::int64_t> pair_counts_;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> where_;
  std::priority_queue<Candidate, std::vector<Candidate>, CandidateOrder> queue_;
  std::vector<std::uint64_t> visited_;
  std::uint64_t stamp_ = 0;
  std::vector<std::uint64_t> touched_;
};

PostProcessor post_processor_for(PreTokenizerStyle style, const std::vector<std::string>& specials) {
  PostProcessorStep byte_level;
  byte_level.add_prefix_space = true;
  byte_level.trim_offsets = false;
  const auto bos = std::find(specials.begin(), specials.end(), kBeginOfText);
  if (style != PreTokenizerStyle::Llama3 || bos == specials.end()) return PostProcessor({byte_level}, false);
  // Llama-3 prepends <|begin_of_text|> to every sequence.
  PostProcessorStep bos_template;
  bos_template.kind = PostProcessorStep::Kind::Template;
  const auto bos_id = static_cast<TokenId>(bos - specials.begin());
  bos_template.before = {bos_id};
  const std::string name(kBeginOfText);
  bos_template.template_json = {
      {"single", {{{"SpecialToken", {{"id", name}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair",
       {{{"SpecialToken", {{"id", name}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
        {{"SpecialToken", {{"id", name}, {"type_id", 1}}}},
        {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
      {"special_tokens", {{name, {{"id", name}, {"ids", {bos_id}}, {"tokens", {name}}}}}}};
  return PostProcessor({byte_level, bos_template}, true);
}

}  // namespace

Tokenizer BpeTrainer::train() const {
  counts_->flush(options_.threads);

  // Ids: special tokens, then the 256 byte symbols in code point order, then merges.
  std::vector<std::string> vocab = options_.special_tokens;
  std::array<TokenId, 256> byte_id{};
  for (const std::uint8_t byte : byte_level::bytes_in_char_order()) {
    byte_id[byte] = static_cast<TokenId>(vocab.size());
    vocab.push_back(byte_level::encode(std::string_view(reinterpret_cast<const char*>(&byte), 1)));
  }
  std::vector<Word> words;
  words.reserve(counts_->counts.size());
  for (const auto& [text, count] : counts_->counts) {
    Word word{{}, static_cast<std::int64_t>(count)};
    word.symbols.reserve(text.size());
    for (const char c : text) word.symbols.push_back(byte_id[static_cast<unsigned char>(c)]);
    words.push_back(std::move(word));
  }
  // Hash-map order is arbitrary; sort so training is reproducible.
  std::sort(words.begin(), words.end(), [](const Word& a, const Word& b) { return a.symbols < b.symbols; });

  MergeLearner learner(std::move(words), std::move(vocab), options_.vocab_size, options_.min_frequency);
  learner.run();

  std::vector<std::pair<std::string, TokenId>> model_vocab;
  for (std::size_t i = 0; i < learner.vocab().size(); ++i) model_vocab.emplace_back(learner.vocab()[i], static_cast<TokenId>(i));
  BpeOptions model_options;
  model_options.ignore_merges = options_.style == PreTokenizerStyle::Llama3;
  model_options.merges_as_pairs = options_.style == PreTokenizerStyle::Llama3;
  BpeModel model(std::move(model_vocab), std::move(learner.merges()), model_options);

  std::vector<AddedToken> added;
  for (std::size_t i = 0; i < options_.special_tokens.size(); ++i) {
    added.push_back({static_cast<TokenId>(i), options_.special_tokens[i], true, false, false, false, false});
  }
  auto impl = std::make_unique<Tokenizer::Impl>(std::move(model), added,
                                                pre_tokenizer_for(options_.style, options_.split_digits),
                                                post_processor_for(options_.style, options_.special_tokens),
                                                ByteLevelDecoder{});
  return Tokenizer(std::move(impl));
}

}  // namespace kiln::tok
