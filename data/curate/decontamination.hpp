#pragma once
// Stage 5, decontamination: documents that share a word n-gram (default 13, as GPT-3 and
// the lm-evaluation-harness do) with an evaluation set are dropped, or the matching spans
// are cut out with a margin of characters around them. Words are compared in simplified
// form (lowercase, no punctuation, numbers folded). Evaluation texts shorter than n words
// (short prompts) are matched whole, if they have at least `min_eval_words` words. Numbers
// are compared as written: "78 plus 79" must not match "12 plus 7".
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace kiln::curate {

enum class DecontaminationMode { Document, Span };

struct DecontaminationOptions {
  bool enabled = false;
  std::vector<std::string> eval_sets;  // .jsonl(.zst) records or plain text (one text per line)
  std::vector<std::string> fields;     // JSON fields joined (with ' ') into the eval text; empty:
                                       // "text" if present, else every string field
  int ngram = 13;
  int min_eval_words = 8;
  DecontaminationMode mode = DecontaminationMode::Document;
  int margin_chars = 200;          // span mode: removed on each side of a match
  int min_remaining_chars = 200;   // span mode: a document with less left is dropped
};

struct DecontaminationResult {
  std::string_view reason;   // "contaminated", "contaminated_remainder_too_short" or ""
  std::size_t matches = 0;   // matching n-grams found
  std::size_t spans_removed = 0;
  std::string text;          // span mode: the text with the spans removed
  bool changed = false;
};

class Decontaminator {
 public:
  // Reads every evaluation set; throws kiln::Error naming file:line for a bad record.
  explicit Decontaminator(const DecontaminationOptions& options);
  // For tests: evaluation texts given directly.
  Decontaminator(const DecontaminationOptions& options, const std::vector<std::string>& eval_texts);

  DecontaminationResult check(std::string_view text) const;
  std::size_t eval_texts() const { return eval_texts_; }
  std::size_t ngrams() const { return ngrams_.size(); }

 private:
  void add_eval_text(std::string_view text);
  void load_file(const std::filesystem::path& path);
  std::uint64_t window_hash(const std::vector<std::uint64_t>& words, std::size_t begin, std::size_t n) const;

  DecontaminationOptions options_;
  std::unordered_set<std::uint64_t> ngrams_;  // hashes of (length, words)
  std::set<std::size_t> short_lengths_;       // lengths of whole short texts
  std::size_t eval_texts_ = 0;
};

}  // namespace kiln::curate
