#include "data/curate/curate_recipe.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>

namespace kiln::curate {

namespace {

using Apply = std::function<std::string(CurateOptions&, const RecipeValue&)>;

std::string found(const RecipeValue& value) {
  return value.is_list ? "a list" : fmt::format("'{}'", value.scalar);
}

bool parse_double(const std::string& text, double& out) {
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size() && std::isfinite(out);
}

bool parse_bool(const std::string& text, bool& out) {
  static const std::set<std::string> yes = {"true", "True", "TRUE", "yes", "on", "1"};
  static const std::set<std::string> no = {"false", "False", "FALSE", "no", "off", "0"};
  if (yes.contains(text)) return (out = true), true;
  if (no.contains(text)) return (out = false), true;
  return false;
}


template <class Target>
RecipeField boolean(std::string path, Target target) {
  return {std::move(path), "true or false", [target](CurateOptions& o, const RecipeValue& v) -> std::string {
            bool value = false;
            if (v.is_list || !parse_bool(v.scalar, value)) return fmt::format("expected true or false, found {}", found(v));
            target(o) = value;
            return "";
          }};
}

template <class Target>
RecipeField number(std::string path, double low, double high, Target target) {
  const std::string expected = high == std::numeric_limits<double>::infinity()
                                   ? fmt::format("a number >= {}", low)
                                   : fmt::format("a number in [{}, {}]", low, high);
  return {std::move(path), expected, [target, low, high, expected](CurateOptions& o, const RecipeValue& v) -> std::string {
            double value = 0;
            if (v.is_list || !parse_double(v.scalar, value) || value < low || value > high) {
              return fmt::format("expected {}, found {}", expected, found(v));
            }
            target(o) = value;
            return "";
          }};
}

template <class Target>
RecipeField integer(std::string path, long long low, long long high, Target target) {
  const std::string expected = fmt::format("a whole number in [{}, {}]", low, high);
  return {std::move(path), expected, [target, low, high, expected](CurateOptions& o, const RecipeValue& v) -> std::string {
            long long value = 0;
            const auto* end = v.scalar.data() + v.scalar.size();
            const auto result = std::from_chars(v.scalar.data(), end, value);
            if (v.is_list || v.scalar.empty() || result.ec != std::errc() || result.ptr != end || value < low || value > high) {
              return fmt::format("expected {}, found {}", expected, found(v));
            }
            using T = std::remove_reference_t<decltype(target(o))>;
            target(o) = static_cast<T>(value);
            return "";
          }};
}

template <class Target>
RecipeField text(std::string path, Target target) {
  return {std::move(path), "a string", [target](CurateOptions& o, const RecipeValue& v) -> std::string {
            if (v.is_list) return "expected a string, found a list";
            target(o) = v.scalar;
            return "";
          }};
}

template <class Target>
RecipeField text_list(std::string path, Target target) {
  return {std::move(path), "a list of strings", [target](CurateOptions& o, const RecipeValue& v) -> std::string {
            target(o) = v.is_list ? v.list : std::vector<std::string>{v.scalar};
            return "";
          }};
}

template <class Enum, class Target>
RecipeField choice(std::string path, std::vector<std::pair<std::string, Enum>> choices, Target target) {
  std::string names;
  for (const auto& [name, value] : choices) names += (names.empty() ? "" : " | ") + name;
  return {std::move(path), "one of " + names, [target, choices, names](CurateOptions& o, const RecipeValue& v) -> std::string {
            for (const auto& [name, value] : choices) {
              if (!v.is_list && v.scalar == name) {
                target(o) = value;
                return "";
              }
            }
            return fmt::format("expected one of {}, found {}", names, found(v));
          }};
}

constexpr double kInf = std::numeric_limits<double>::infinity();

// Gopher's n-gram thresholds are stored as (n, fraction) pairs; one key per n.
RecipeField ngram_fraction(std::string path, bool top, int n) {
  return number(std::move(path), 0, 1, [top, n](CurateOptions& o) -> double& {
    auto& pairs = top ? o.gopher_repetition.top_ngrams : o.gopher_repetition.dup_ngrams;
    for (auto& [size, fraction] : pairs) {
      if (size == n) return fraction;
    }
    pairs.emplace_back(n, 0.0);
    std::sort(pairs.begin(), pairs.end());
    for (auto& [size, fraction] : pairs) {
      if (size == n) return fraction;
    }
    return pairs.front().second;  // unreachable
  });
}

std::vector<RecipeField> build_fields() {
  std::vector<RecipeField> f;
  // input / output / run
  f.push_back(text_list("input.paths", [](CurateOptions& o) -> auto& { return o.input.paths; }));
  f.push_back(text("input.text_field", [](CurateOptions& o) -> auto& { return o.input.text_field; }));
  f.push_back(boolean("input.skip_bad_records", [](CurateOptions& o) -> auto& { return o.input.skip_bad_records; }));
  f.push_back(text("output.dir", [](CurateOptions& o) -> auto& { return o.output.dir; }));
  f.push_back(boolean("output.zstd", [](CurateOptions& o) -> auto& { return o.output.zstd; }));
  f.push_back(integer("output.docs_per_shard", 1, 1LL << 40, [](CurateOptions& o) -> auto& { return o.output.docs_per_shard; }));
  f.push_back(boolean("output.keep_rejected", [](CurateOptions& o) -> auto& { return o.output.keep_rejected; }));
  f.push_back(integer("run.threads", 0, 4096, [](CurateOptions& o) -> auto& { return o.run.threads; }));
  f.push_back(integer("run.batch_docs", 1, 1 << 24, [](CurateOptions& o) -> auto& { return o.run.batch_docs; }));
  f.push_back(number("run.memory_budget_mb", 0.001, kInf, [](CurateOptions& o) -> auto& { return o.run.memory_budget_mb; }));
  f.push_back(text("run.work_dir", [](CurateOptions& o) -> auto& { return o.run.work_dir; }));
  f.push_back(boolean("run.progress", [](CurateOptions& o) -> auto& { return o.run.progress; }));
  // 1. normalisation
  f.push_back(boolean("normalize.enabled", [](CurateOptions& o) -> auto& { return o.normalize.enabled; }));
  f.push_back(choice<UnicodeForm>("normalize.form", {{"nfc", UnicodeForm::Nfc}, {"nfkc", UnicodeForm::Nfkc}, {"none", UnicodeForm::None}},
                                  [](CurateOptions& o) -> auto& { return o.normalize.form; }));
  f.push_back(choice<InvalidUtf8Policy>("normalize.invalid_utf8", {{"repair", InvalidUtf8Policy::Repair}, {"reject", InvalidUtf8Policy::Reject}},
                                        [](CurateOptions& o) -> auto& { return o.normalize.invalid_utf8; }));
  f.push_back(boolean("normalize.clean_whitespace", [](CurateOptions& o) -> auto& { return o.normalize.clean_whitespace; }));
  f.push_back(integer("normalize.max_blank_lines", -1, 1000, [](CurateOptions& o) -> auto& { return o.normalize.max_blank_lines; }));
  // 2. heuristic quality
  auto gq = [](CurateOptions& o) -> GopherQualityOptions& { return o.gopher_quality; };
  f.push_back(boolean("gopher_quality.enabled", [gq](CurateOptions& o) -> auto& { return gq(o).enabled; }));
  f.push_back(number("gopher_quality.min_doc_words", 0, kInf, [gq](CurateOptions& o) -> auto& { return gq(o).min_doc_words; }));
  f.push_back(number("gopher_quality.max_doc_words", 0, kInf, [gq](CurateOptions& o) -> auto& { return gq(o).max_doc_words; }));
  f.push_back(number("gopher_quality.min_avg_word_length", 0, kInf, [gq](CurateOptions& o) -> auto& { return gq(o).min_avg_word_length; }));
  f.push_back(number("gopher_quality.max_avg_word_length", 0, kInf, [gq](CurateOptions& o) -> auto& { return gq(o).max_avg_word_length; }));
  f.push_back(number("gopher_quality.max_symbol_word_ratio", 0, kInf, [gq](CurateOptions& o) -> auto& { return gq(o).max_symbol_word_ratio; }));
  f.push_back(number("gopher_quality.max_bullet_lines_ratio", 0, 1, [gq](CurateOptions& o) -> auto& { return gq(o).max_bullet_lines_ratio; }));
  f.push_back(number("gopher_quality.max_ellipsis_lines_ratio", 0, 1, [gq](CurateOptions& o) -> auto& { return gq(o).max_ellipsis_lines_ratio; }));
  f.push_back(number("gopher_quality.min_alpha_words_ratio", 0, 1, [gq](CurateOptions& o) -> auto& { return gq(o).min_alpha_words_ratio; }));
  f.push_back(number("gopher_quality.min_stop_words", 0, kInf, [gq](CurateOptions& o) -> auto& { return gq(o).min_stop_words; }));
  f.push_back(text_list("gopher_quality.stop_words", [gq](CurateOptions& o) -> auto& { return gq(o).stop_words; }));
  auto gr = [](CurateOptions& o) -> GopherRepetitionOptions& { return o.gopher_repetition; };
  f.push_back(boolean("gopher_repetition.enabled", [gr](CurateOptions& o) -> auto& { return gr(o).enabled; }));
  f.push_back(number("gopher_repetition.max_dup_line_fraction", 0, 1, [gr](CurateOptions& o) -> auto& { return gr(o).max_dup_line_fraction; }));
  f.push_back(number("gopher_repetition.max_dup_paragraph_fraction", 0, 1, [gr](CurateOptions& o) -> auto& { return gr(o).max_dup_paragraph_fraction; }));
  f.push_back(number("gopher_repetition.max_dup_line_char_fraction", 0, 1, [gr](CurateOptions& o) -> auto& { return gr(o).max_dup_line_char_fraction; }));
  f.push_back(number("gopher_repetition.max_dup_paragraph_char_fraction", 0, 1, [gr](CurateOptions& o) -> auto& { return gr(o).max_dup_paragraph_char_fraction; }));
  for (int n = 2; n <= 4; ++n) f.push_back(ngram_fraction(fmt::format("gopher_repetition.top_{}gram_char_fraction", n), true, n));
  for (int n = 5; n <= 10; ++n) f.push_back(ngram_fraction(fmt::format("gopher_repetition.dup_{}gram_char_fraction", n), false, n));
  auto c4 = [](CurateOptions& o) -> C4Options& { return o.c4; };
  f.push_back(boolean("c4.enabled", [c4](CurateOptions& o) -> auto& { return c4(o).enabled; }));
  f.push_back(boolean("c4.remove_citations", [c4](CurateOptions& o) -> auto& { return c4(o).remove_citations; }));
  f.push_back(boolean("c4.filter_no_terminal_punct", [c4](CurateOptions& o) -> auto& { return c4(o).filter_no_terminal_punct; }));
  f.push_back(integer("c4.min_words_per_line", 0, 1 << 20, [c4](CurateOptions& o) -> auto& { return c4(o).min_words_per_line; }));
  f.push_back(integer("c4.max_word_length", 0, 1 << 30, [c4](CurateOptions& o) -> auto& { return c4(o).max_word_length; }));
  f.push_back(integer("c4.min_num_sentences", 0, 1 << 20, [c4](CurateOptions& o) -> auto& { return c4(o).min_num_sentences; }));
  f.push_back(boolean("c4.filter_lorem_ipsum", [c4](CurateOptions& o) -> auto& { return c4(o).filter_lorem_ipsum; }));
  f.push_back(boolean("c4.filter_javascript", [c4](CurateOptions& o) -> auto& { return c4(o).filter_javascript; }));
  f.push_back(boolean("c4.filter_curly_bracket", [c4](CurateOptions& o) -> auto& { return c4(o).filter_curly_bracket; }));
  f.push_back(boolean("c4.filter_policy", [c4](CurateOptions& o) -> auto& { return c4(o).filter_policy; }));
  f.push_back(text_list("c4.bad_words", [c4](CurateOptions& o) -> auto& { return c4(o).bad_words; }));
  f.push_back(text("c4.bad_words_file", [c4](CurateOptions& o) -> auto& { return c4(o).bad_words_file; }));
  auto fw = [](CurateOptions& o) -> FineWebOptions& { return o.fineweb; };
  f.push_back(boolean("fineweb.enabled", [fw](CurateOptions& o) -> auto& { return fw(o).enabled; }));
  f.push_back(number("fineweb.min_line_punct_ratio", 0, 1, [fw](CurateOptions& o) -> auto& { return fw(o).min_line_punct_ratio; }));
  f.push_back(boolean("fineweb.line_punct_exclude_zero", [fw](CurateOptions& o) -> auto& { return fw(o).line_punct_exclude_zero; }));
  f.push_back(number("fineweb.max_short_line_ratio", 0, 1, [fw](CurateOptions& o) -> auto& { return fw(o).max_short_line_ratio; }));
  f.push_back(integer("fineweb.short_line_length", 0, 1 << 20, [fw](CurateOptions& o) -> auto& { return fw(o).short_line_length; }));
  f.push_back(number("fineweb.max_char_dup_ratio", 0, 1, [fw](CurateOptions& o) -> auto& { return fw(o).max_char_dup_ratio; }));
  f.push_back(number("fineweb.max_newline_ratio", 0, kInf, [fw](CurateOptions& o) -> auto& { return fw(o).max_newline_ratio; }));
  // 3. exact dedup, 4. near dedup
  f.push_back(boolean("exact_dedup.enabled", [](CurateOptions& o) -> auto& { return o.exact_dedup.enabled; }));
  f.push_back(boolean("exact_dedup.normalized", [](CurateOptions& o) -> auto& { return o.exact_dedup.normalized; }));
  f.push_back(boolean("exact_dedup.lines", [](CurateOptions& o) -> auto& { return o.exact_dedup.lines; }));
  f.push_back(integer("exact_dedup.line_min_chars", 0, 1 << 20, [](CurateOptions& o) -> auto& { return o.exact_dedup.line_min_chars; }));
  f.push_back(boolean("near_dedup.enabled", [](CurateOptions& o) -> auto& { return o.near_dedup.enabled; }));
  f.push_back(integer("near_dedup.bands", 1, 1024, [](CurateOptions& o) -> auto& { return o.near_dedup.bands; }));
  f.push_back(integer("near_dedup.rows", 1, 1024, [](CurateOptions& o) -> auto& { return o.near_dedup.rows; }));
  f.push_back(integer("near_dedup.shingle_words", 1, 64, [](CurateOptions& o) -> auto& { return o.near_dedup.shingle_words; }));
  f.push_back(boolean("near_dedup.fold_numbers", [](CurateOptions& o) -> auto& { return o.near_dedup.fold_numbers; }));
  f.push_back(integer("near_dedup.seed", 0, std::numeric_limits<long long>::max(), [](CurateOptions& o) -> auto& { return o.near_dedup.seed; }));
  // 5. decontamination
  auto dc = [](CurateOptions& o) -> DecontaminationOptions& { return o.decontamination; };
  f.push_back(boolean("decontamination.enabled", [dc](CurateOptions& o) -> auto& { return dc(o).enabled; }));
  f.push_back(text_list("decontamination.eval_sets", [dc](CurateOptions& o) -> auto& { return dc(o).eval_sets; }));
  f.push_back(text_list("decontamination.fields", [dc](CurateOptions& o) -> auto& { return dc(o).fields; }));
  f.push_back(integer("decontamination.ngram", 1, 1000, [dc](CurateOptions& o) -> auto& { return dc(o).ngram; }));
  f.push_back(integer("decontamination.min_eval_words", 1, 1000, [dc](CurateOptions& o) -> auto& { return dc(o).min_eval_words; }));
  f.push_back(choice<DecontaminationMode>("decontamination.mode", {{"document", DecontaminationMode::Document}, {"span", DecontaminationMode::Span}},
                                          [dc](CurateOptions& o) -> auto& { return dc(o).mode; }));
  f.push_back(integer("decontamination.margin_chars", 0, 1 << 24, [dc](CurateOptions& o) -> auto& { return dc(o).margin_chars; }));
  f.push_back(integer("decontamination.min_remaining_chars", 0, 1 << 24, [dc](CurateOptions& o) -> auto& { return dc(o).min_remaining_chars; }));
  // 6. PII, 7. model scoring
  f.push_back(boolean("pii.enabled", [](CurateOptions& o) -> auto& { return o.pii.enabled; }));
  f.push_back(boolean("pii.emails", [](CurateOptions& o) -> auto& { return o.pii.emails; }));
  f.push_back(boolean("pii.ip_addresses", [](CurateOptions& o) -> auto& { return o.pii.ip_addresses; }));
  f.push_back(text("pii.email_placeholder", [](CurateOptions& o) -> auto& { return o.pii.email_placeholder; }));
  f.push_back(text("pii.ip_placeholder", [](CurateOptions& o) -> auto& { return o.pii.ip_placeholder; }));
  auto ms = [](CurateOptions& o) -> ModelScoringOptions& { return o.model_scoring; };
  f.push_back(boolean("model_scoring.enabled", [ms](CurateOptions& o) -> auto& { return ms(o).enabled; }));
  f.push_back(text("model_scoring.checkpoint", [ms](CurateOptions& o) -> auto& { return ms(o).checkpoint; }));
  f.push_back(number("model_scoring.max_perplexity", 0, kInf, [ms](CurateOptions& o) -> auto& { return ms(o).max_perplexity; }));
  f.push_back(number("model_scoring.keep_fraction", 0, 1, [ms](CurateOptions& o) -> auto& { return ms(o).keep_fraction; }));
  f.push_back(integer("model_scoring.max_tokens", 0, 1 << 24, [ms](CurateOptions& o) -> auto& { return ms(o).max_tokens; }));
  f.push_back(text("model_scoring.field", [ms](CurateOptions& o) -> auto& { return ms(o).field; }));
  return f;
}

}  // namespace

const std::vector<RecipeField>& curate_recipe_fields() {
  static const std::vector<RecipeField> fields = build_fields();
  return fields;
}

std::vector<std::string> curate_recipe_paths() {
  std::vector<std::string> paths;
  for (const auto& field : curate_recipe_fields()) paths.push_back(field.path);
  return paths;
}

std::vector<std::string> curate_recipe_sections() {
  std::vector<std::string> sections;
  for (const auto& field : curate_recipe_fields()) {
    const std::string section = field.path.substr(0, field.path.find('.'));
    if (std::find(sections.begin(), sections.end(), section) == sections.end()) sections.push_back(section);
  }
  return sections;
}

const RecipeField* find_curate_field(std::string_view path) {
  for (const auto& field : curate_recipe_fields()) {
    if (field.path == path) return &field;
  }
  return nullptr;
}

std::vector<std::string> check_curate_options(const CurateOptions& o) {
  std::vector<std::string> problems;
  if (o.input.paths.empty()) problems.push_back("input.paths: no input files. Fix: list JSONL/JSONL.zst/text files (or pass --input)");
  if (o.output.dir.empty()) problems.push_back("output.dir: no output directory. Fix: set output.dir (or pass --out)");
  if (o.decontamination.enabled && o.decontamination.eval_sets.empty()) {
    problems.push_back("decontamination.eval_sets: decontamination is on but no evaluation sets are listed. Fix: list files, or set decontamination.enabled: false");
  }
  if (o.model_scoring.enabled && o.model_scoring.checkpoint.empty()) {
    problems.push_back("model_scoring.checkpoint: model scoring is on but no checkpoint is given. Fix: set it to a run directory of `kiln train`");
  }
  if (o.model_scoring.enabled && o.model_scoring.keep_fraction <= 0) {
    problems.push_back("model_scoring.keep_fraction: 0 keeps nothing. Fix: a fraction in (0, 1]");
  }
  if (o.gopher_quality.min_doc_words > 0 && o.gopher_quality.max_doc_words > 0 &&
      o.gopher_quality.min_doc_words > o.gopher_quality.max_doc_words) {
    problems.push_back("gopher_quality.min_doc_words: larger than max_doc_words, so every document fails. Fix: lower it");
  }
  return problems;
}

}  // namespace kiln::curate
