#include "data/curate/document_stages.hpp"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>

#include "data/curate/c4_rules.hpp"
#include "data/curate/fineweb_rules.hpp"
#include "data/curate/gopher_quality.hpp"
#include "data/curate/gopher_repetition.hpp"
#include "data/curate/json_record.hpp"
#include "data/curate/normalizer.hpp"
#include "data/curate/text_units.hpp"

namespace kiln::curate {

void DocTrace::apply(CurateReport& report) const {
  for (const auto& step : steps) {
    if (step.reason.empty()) report.pass(step.stage, step.bytes_in, step.bytes_out);
    else report.drop(step.stage, step.bytes_in, step.reason);
  }
  for (const auto& counter : counters) report.count(counter.stage, counter.name, counter.amount);
}

namespace {

// Records the outcome of one stage; returns whether the document goes on.
bool record_step(CuratedDoc& doc, Stage stage, std::size_t bytes_in, std::string_view reason) {
  doc.trace.steps.push_back({stage, bytes_in, reason.empty() ? doc.text.size() : 0, std::string(reason)});
  if (reason.empty()) return true;
  doc.kept = false;
  doc.stage = stage;
  doc.reason = std::string(reason);
  return false;
}

// A file name as a JSON string: bytes that are not UTF-8 (names are bytes on Linux) become
// U+FFFD, so the record stays valid JSON.
std::string json_path(const std::filesystem::path& path) { return json_string(repair_utf8(path.string())); }

}  // namespace

std::uint64_t line_dedup_hash(std::string_view line, int min_chars) {
  line = strip(line);
  if (code_points(line) < static_cast<std::size_t>(std::max(1, min_chars))) return 0;
  return XXH3_64bits(line.data(), line.size()) | 1;  // never 0, which means "not counted"
}

std::uint64_t exact_dedup_hash(std::string_view text, bool normalized) {
  if (!normalized) return XXH3_64bits(text.data(), text.size());
  thread_local std::vector<SimpleWord> words;
  thread_local std::string scratch;
  simple_words(text, words, scratch);
  std::uint64_t hash = words.size();
  for (const auto& word : words) hash = extend_hash(hash, word.hash);
  return hash;
}

// ---- first pass ----------------------------------------------------------------------------

FirstPass::FirstPass(const CurateOptions& options, const RecordReader& reader)
    : options_(options), reader_(reader), minhasher_(options.near_dedup), bad_words_(options.c4) {}

bool FirstPass::parse(const RawRecord& raw, CuratedDoc& doc) const {
  doc.ordinal = raw.ordinal;
  const bool text_input = reader_.format(raw.source) == RecordFormat::Text;
  const bool valid = is_valid_utf8(raw.bytes);
  if (!valid && options_.normalize.enabled && options_.normalize.invalid_utf8 == InvalidUtf8Policy::Reject) {
    // Kept verbatim for the rejected file would not be valid JSON; describe it instead.
    doc.record = fmt::format("{{\"source\":{},\"line\":{}}}", json_path(reader_.path(raw.source)), raw.line);
    doc.trace.steps.push_back({Stage::Read, raw.bytes.size(), raw.bytes.size(), ""});
    return record_step(doc, Stage::Normalize, raw.bytes.size(), "invalid_utf8");
  }
  const std::string repaired = valid ? std::string() : repair_utf8(raw.bytes);
  const std::string& bytes = valid ? raw.bytes : repaired;
  if (!valid) doc.trace.counters.push_back({Stage::Normalize, "records_utf8_repaired", 1});
  if (text_input) {
    doc.record = "{\"source\":" + json_path(reader_.path(raw.source)) + ",\"text\":";
    doc.value_begin = doc.record.size();
    append_json_string(doc.record, bytes);
    doc.value_end = doc.record.size();
    doc.record.push_back('}');
    doc.text = bytes;
  } else {
    ParsedRecord parsed;
    const std::string error = parse_record(bytes, options_.input.text_field, parsed);
    if (!error.empty()) {
      const std::string where = fmt::format("{}:{}", reader_.path(raw.source).string(), raw.line);
      if (!options_.input.skip_bad_records) {
        doc.fatal_error = fmt::format("{}: {} (set input.skip_bad_records: true, or pass --skip-bad-records, to skip such records)", where, error);
      }
      doc.record = fmt::format("{{\"source\":{},\"line\":{},\"error\":{}}}", json_path(reader_.path(raw.source)),
                               raw.line, json_string(error));
      return record_step(doc, Stage::Read, bytes.size(), "bad_record");
    }
    doc.record = bytes;
    doc.value_begin = parsed.value_begin;
    doc.value_end = parsed.value_end;
    doc.text = std::move(parsed.text);
  }
  return record_step(doc, Stage::Read, doc.text.size(), "");
}

bool FirstPass::filter(CuratedDoc& doc) const {
  if (options_.normalize.enabled) {
    const std::size_t before = doc.text.size();
    NormalizeResult normalized = normalize_text(doc.text, options_.normalize);
    doc.text = std::move(normalized.text);
    if (!record_step(doc, Stage::Normalize, before, normalized.reason)) return false;
  }
  if (options_.gopher_quality.enabled &&
      !record_step(doc, Stage::GopherQuality, doc.text.size(), gopher_quality_check(doc.text, options_.gopher_quality))) {
    return false;
  }
  if (options_.gopher_repetition.enabled &&
      !record_step(doc, Stage::GopherRepetition, doc.text.size(), gopher_repetition_check(doc.text, options_.gopher_repetition))) {
    return false;
  }
  if (options_.c4.enabled) {
    const std::size_t before = doc.text.size();
    C4Result result = c4_apply(doc.text, options_.c4, &bad_words_);
    if (result.lines_removed > 0) doc.trace.counters.push_back({Stage::C4, "lines_removed", result.lines_removed});
    if (result.reason.empty()) doc.text = std::move(result.text);
    if (!record_step(doc, Stage::C4, before, result.reason)) return false;
  }
  if (options_.fineweb.enabled && !record_step(doc, Stage::FineWeb, doc.text.size(), fineweb_check(doc.text, options_.fineweb))) {
    return false;
  }
  return true;
}

void FirstPass::dedup_keys(const CuratedDoc& doc, DedupKeys& keys) const {
  if (options_.exact_dedup.enabled) keys.exact_hash = exact_dedup_hash(doc.text, options_.exact_dedup.normalized);
  if (options_.near_dedup.enabled) minhasher_.band_hashes(doc.text, keys.bands);
  if (options_.exact_dedup.lines) {
    thread_local std::vector<std::string_view> lines;
    split_lines(doc.text, lines);
    for (std::string_view line : lines) {
      if (const auto hash = line_dedup_hash(line, options_.exact_dedup.line_min_chars)) keys.lines.push_back(hash);
    }
    std::sort(keys.lines.begin(), keys.lines.end());
    keys.lines.erase(std::unique(keys.lines.begin(), keys.lines.end()), keys.lines.end());
  }
}

void FirstPass::run(const RawRecord& raw, CuratedDoc& doc, DedupKeys& keys) const {
  doc.kept = true;
  if (!parse(raw, doc) || !filter(doc)) return;
  dedup_keys(doc, keys);
}

// ---- second pass ---------------------------------------------------------------------------

SecondPass::SecondPass(const CurateOptions& options, const RankDecisions& decisions, const Decontaminator* decontaminator,
                       const PiiRedactor* redactor)
    : options_(options), decisions_(decisions), decontaminator_(decontaminator), redactor_(redactor) {}

bool SecondPass::remove_duplicate_lines(CuratedDoc& doc) const {
  const auto& removals = decisions_.line_removals;
  auto first = std::lower_bound(removals.begin(), removals.end(), doc.ordinal,
                                [](const HashRecord& r, std::uint64_t ordinal) { return r.ordinal < ordinal; });
  std::vector<std::uint64_t> doomed;
  for (auto it = first; it != removals.end() && it->ordinal == doc.ordinal; ++it) doomed.push_back(it->hash);
  const std::size_t before = doc.text.size();
  if (!doomed.empty()) {
    std::vector<std::string_view> lines;
    split_lines(doc.text, lines);
    std::string kept;
    std::uint64_t removed = 0;
    for (std::string_view line : lines) {
      const auto hash = line_dedup_hash(line, options_.exact_dedup.line_min_chars);
      if (hash != 0 && std::binary_search(doomed.begin(), doomed.end(), hash)) {
        ++removed;
        continue;
      }
      kept.append(line);
      kept.push_back('\n');
    }
    doc.text = std::string(strip(kept));
    doc.trace.counters.push_back({Stage::LineDedup, "lines_removed", removed});
  }
  return record_step(doc, Stage::LineDedup, before, strip(doc.text).empty() ? "empty_after_line_dedup" : "");
}

bool SecondPass::dedup(CuratedDoc& doc) const {
  const std::size_t bytes = doc.text.size();
  if (options_.exact_dedup.enabled &&
      !record_step(doc, Stage::ExactDedup, bytes, contains_ordinal(decisions_.exact_removed, doc.ordinal) ? "exact_duplicate" : "")) {
    return false;
  }
  if (options_.near_dedup.enabled &&
      !record_step(doc, Stage::NearDedup, bytes, contains_ordinal(decisions_.near_removed, doc.ordinal) ? "near_duplicate" : "")) {
    return false;
  }
  if (options_.exact_dedup.lines) return remove_duplicate_lines(doc);
  return true;
}

void SecondPass::run(CuratedDoc& doc) const {
  if (!doc.kept || !dedup(doc)) return;
  if (decontaminator_ != nullptr) {
    const std::size_t before = doc.text.size();
    DecontaminationResult result = decontaminator_->check(doc.text);
    if (result.matches > 0) doc.trace.counters.push_back({Stage::Decontamination, "ngram_matches", result.matches});
    if (result.spans_removed > 0) doc.trace.counters.push_back({Stage::Decontamination, "spans_removed", result.spans_removed});
    if (result.reason.empty() && result.changed) doc.text = std::move(result.text);
    if (!record_step(doc, Stage::Decontamination, before, result.reason)) return;
  }
  if (redactor_ != nullptr) {
    const std::size_t before = doc.text.size();
    PiiResult result = redactor_->redact(doc.text);
    if (result.emails > 0) doc.trace.counters.push_back({Stage::Pii, "emails_redacted", result.emails});
    if (result.ip_addresses > 0) doc.trace.counters.push_back({Stage::Pii, "ip_addresses_redacted", result.ip_addresses});
    if (result.changed()) {
      doc.text = std::move(result.text);
      doc.trace.counters.push_back({Stage::Pii, "documents_redacted", 1});
    }
    record_step(doc, Stage::Pii, before, "");
  }
}

std::string output_line(const CuratedDoc& doc, const CurateOptions& options) {
  if (doc.kept) {
    std::string line = splice(doc.record, doc.value_begin, doc.value_end, json_string(doc.text));
    if (!std::isnan(doc.score)) line = set_json_field(line, options.model_scoring.field, fmt::format("{:.6g}", doc.score));
    return line;
  }
  std::string line = set_json_field(doc.record, "stage", json_string(stage_name(doc.stage)));
  return set_json_field(line, "reason", json_string(doc.reason));
}

}  // namespace kiln::curate
