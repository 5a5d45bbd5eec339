#include "data/curate/decontamination.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "data/curate/record_reader.hpp"
#include "data/curate/text_units.hpp"
#include "trainer/core/error.hpp"

namespace kiln::curate {

namespace {

std::string text_of_eval_record(const nlohmann::json& record, const std::vector<std::string>& fields,
                                const std::string& where) {
  if (!record.is_object()) fail("{}: expected a JSON object per line in the evaluation set", where);
  std::string text;
  auto append = [&](const nlohmann::json& value) {
    if (!value.is_string()) return;
    if (!text.empty()) text.push_back(' ');
    text += value.get<std::string>();
  };
  if (!fields.empty()) {
    for (const auto& field : fields) {
      if (!record.contains(field)) fail("{}: evaluation record has no \"{}\" field (decontamination.fields)", where, field);
      append(record[field]);
    }
  } else if (record.contains("text")) {
    append(record["text"]);
  } else {
    for (const auto& [key, value] : record.items()) append(value);
  }
  return text;
}

}  // namespace

Decontaminator::Decontaminator(const DecontaminationOptions& options) : options_(options) {
  for (const auto& path : options.eval_sets) load_file(path);
}

Decontaminator::Decontaminator(const DecontaminationOptions& options, const std::vector<std::string>& eval_texts)
    : options_(options) {
  for (const auto& text : eval_texts) add_eval_text(text);
}

void Decontaminator::load_file(const std::filesystem::path& path) {
  RecordReader reader({path});
  RawRecord record;
  const bool json = reader.format(0) != RecordFormat::Text;
  while (reader.next(record)) {
    if (!json) {
      // A plain-text evaluation file holds one evaluation text per line.
      std::vector<std::string_view> lines;
      split_lines(record.bytes, lines);
      for (std::string_view line : lines) add_eval_text(line);
      continue;
    }
    const std::string where = fmt::format("{}:{}", path.string(), record.line);
    nlohmann::json parsed = nlohmann::json::parse(record.bytes, nullptr, false);
    if (parsed.is_discarded()) fail("{}: malformed JSON in the evaluation set", where);
    add_eval_text(text_of_eval_record(parsed, options_.fields, where));
  }
}

std::uint64_t Decontaminator::window_hash(const std::vector<std::uint64_t>& words, std::size_t begin,
                                          std::size_t n) const {
  std::uint64_t hash = n;
  for (std::size_t k = begin; k < begin + n; ++k) hash = extend_hash(hash, words[k]);
  return hash;
}

void Decontaminator::add_eval_text(std::string_view text) {
  thread_local std::vector<SimpleWord> words;
  thread_local std::string scratch;
  simple_words(text, words, scratch, false);
  std::vector<std::uint64_t> hashes(words.size());
  std::transform(words.begin(), words.end(), hashes.begin(), [](const SimpleWord& w) { return w.hash; });
  const auto n = static_cast<std::size_t>(options_.ngram);
  if (hashes.size() < n) {
    if (hashes.size() < static_cast<std::size_t>(std::max(1, options_.min_eval_words))) return;
    short_lengths_.insert(hashes.size());
    ngrams_.insert(window_hash(hashes, 0, hashes.size()));
  } else {
    for (std::size_t i = 0; i + n <= hashes.size(); ++i) ngrams_.insert(window_hash(hashes, i, n));
  }
  ++eval_texts_;
}

DecontaminationResult Decontaminator::check(std::string_view text) const {
  DecontaminationResult result;
  if (ngrams_.empty()) return result;
  thread_local std::vector<SimpleWord> words;
  thread_local std::string scratch;
  thread_local std::vector<std::uint64_t> hashes;
  simple_words(text, words, scratch, false);
  hashes.resize(words.size());
  std::transform(words.begin(), words.end(), hashes.begin(), [](const SimpleWord& w) { return w.hash; });

  // Byte ranges [begin, end) of the matches, margins included.
  std::vector<std::pair<std::size_t, std::size_t>> cuts;
  auto scan = [&](std::size_t n) {
    for (std::size_t i = 0; i + n <= hashes.size(); ++i) {
      if (!ngrams_.contains(window_hash(hashes, i, n))) continue;
      ++result.matches;
      const std::size_t margin = static_cast<std::size_t>(std::max(0, options_.margin_chars));
      const std::size_t begin = words[i].begin > margin ? words[i].begin - margin : 0;
      cuts.emplace_back(begin, std::min<std::size_t>(text.size(), words[i + n - 1].end + margin));
    }
  };
  scan(static_cast<std::size_t>(options_.ngram));
  for (std::size_t length : short_lengths_) scan(length);
  if (result.matches == 0) return result;
  if (options_.mode == DecontaminationMode::Document) {
    result.reason = "contaminated";
    return result;
  }
  // Span mode: cut the merged ranges (at code point boundaries) and join what is left.
  std::sort(cuts.begin(), cuts.end());
  std::size_t kept_from = 0;
  for (std::size_t i = 0; i < cuts.size(); ++i) {
    auto [begin, end] = cuts[i];
    while (i + 1 < cuts.size() && cuts[i + 1].first <= end) end = std::max(end, cuts[++i].second);
    while (begin > 0 && (static_cast<unsigned char>(text[begin]) & 0xC0) == 0x80) --begin;
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    if (begin > kept_from) {
      const auto piece = strip(text.substr(kept_from, begin - kept_from));
      if (!piece.empty()) {
        if (!result.text.empty()) result.text.push_back('\n');
        result.text += piece;
      }
    }
    kept_from = std::max(kept_from, end);
    ++result.spans_removed;
  }
  if (kept_from < text.size()) {
    const auto piece = strip(text.substr(kept_from));
    if (!piece.empty()) {
      if (!result.text.empty()) result.text.push_back('\n');
      result.text += piece;
    }
  }
  result.changed = true;
  if (code_points(result.text) < static_cast<std::size_t>(std::max(0, options_.min_remaining_chars))) {
    result.reason = "contaminated_remainder_too_short";
  }
  return result;
}

}  // namespace kiln::curate
