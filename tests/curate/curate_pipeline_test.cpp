// The whole pipeline on a corpus with planted answers: exact and near duplicates,
// contaminated documents, documents that trip a rule, PII, a bad record. Checks which
// documents survive, why the others were dropped, that every field of a record is kept,
// and that the bytes written do not depend on threads, batch size or the memory budget.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "data/curate/curate_pipeline.hpp"
#include "data/curate/output_shards.hpp"
#include "tests/curate/curate_testing.hpp"
#include "trainer/core/error.hpp"

namespace kiln::curate {
namespace {

namespace fs = std::filesystem;

const std::string kLeak = "Which planet in the solar system has the largest number of confirmed moons orbiting it today";

struct Corpus {
  fs::path dir;
  fs::path input;
  fs::path eval;
};

std::string record(int id, const std::string& text) {
  return nlohmann::json{{"id", id}, {"source", "test"}, {"text", text}}.dump();
}

// ids 0-29 are clean prose; 30+ are planted.
Corpus write_corpus(const std::string& name, bool bad_line) {
  Corpus corpus;
  corpus.dir = fs::temp_directory_path() / ("kiln_curate_pipeline_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(corpus.dir);
  fs::create_directories(corpus.dir);
  corpus.input = corpus.dir / "corpus.jsonl";
  corpus.eval = corpus.dir / "eval.jsonl";
  std::ofstream out(corpus.input);
  for (int id = 0; id < 30; ++id) out << record(id, testing::prose(static_cast<std::uint64_t>(id))) << "\n";
  std::string respaced = testing::prose(3);
  for (std::size_t at = respaced.find(' '); at != std::string::npos; at = respaced.find(' ', at + 2)) respaced.insert(at, " ");
  out << record(30, respaced + "\n;") << "\n";                         // exact (normalised) copy of 3
  std::string edited = testing::prose(5);
  edited.replace(edited.find(' '), 1, " freshly ");
  out << record(31, edited) << "\n";                                    // near copy of 5
  out << record(32, testing::prose(32) + "\n" + kLeak + ".") << "\n";  // contaminated
  out << record(33, "Hello world.") << "\n";                            // too short
  out << record(34, testing::prose(34) + "\nLorem ipsum dolor sit amet, consectetur.") << "\n";
  if (bad_line) out << "{\"id\": 35, \"text\": \"unterminated\n";
  out << record(36, testing::prose(36) + "\nMail jane@example.com about it.") << "\n";  // PII
  out << "\n";                                                          // blank line: ignored
  std::ofstream(corpus.eval) << nlohmann::json{{"question", kLeak}, {"answer", "Saturn"}}.dump() << "\n";
  return corpus;
}

CurateOptions options_for(const Corpus& corpus, const std::string& out) {
  CurateOptions options;
  options.input.paths = {corpus.input.string()};
  options.output.dir = (corpus.dir / out).string();
  options.output.keep_rejected = true;
  options.decontamination.enabled = true;
  options.decontamination.eval_sets = {corpus.eval.string()};
  options.run.progress = false;
  return options;
}

std::vector<nlohmann::json> read_jsonl(const fs::path& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  return records;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(CuratePipeline, KeepsTheRightDocumentsAndExplainsTheRest) {
  const Corpus corpus = write_corpus("answers", true);
  auto options = options_for(corpus, "out");
  options.input.skip_bad_records = true;
  const auto summary = run_curation(options, nullptr);

  std::set<int> kept_ids;
  for (const auto& doc : read_jsonl(fs::path(options.output.dir) / "part-00000.jsonl")) {
    kept_ids.insert(doc["id"].get<int>());
    EXPECT_EQ(doc["source"], "test");  // every field survives
    if (doc["id"] == 36) {
      EXPECT_NE(doc["text"].get<std::string>().find("Mail <EMAIL> about it."), std::string::npos);
    }
  }
  std::set<int> expected;
  for (int id = 0; id < 30; ++id) expected.insert(id);
  expected.insert(36);
  EXPECT_EQ(kept_ids, expected);

  std::map<int, std::string> reasons;
  for (const auto& doc : read_jsonl(fs::path(options.output.dir) / "rejected" / "part-00000.jsonl")) {
    if (doc.contains("id")) reasons[doc["id"].get<int>()] = doc["stage"].get<std::string>() + "/" + doc["reason"].get<std::string>();
    else reasons[-1] = doc["stage"].get<std::string>() + "/" + doc["reason"].get<std::string>();
  }
  EXPECT_EQ(reasons[30], "exact_dedup/exact_duplicate");
  EXPECT_EQ(reasons[31], "near_dedup/near_duplicate");
  EXPECT_EQ(reasons[32], "decontamination/contaminated");
  EXPECT_EQ(reasons[33], "gopher_quality/gopher_short_doc");
  EXPECT_EQ(reasons[34], "c4/c4_lorem_ipsum");
  EXPECT_EQ(reasons[-1], "read/bad_record");  // the malformed line, described with file and line

  const auto report = nlohmann::json::parse(slurp(fs::path(options.output.dir) / "report.json"));
  EXPECT_EQ(report["documents_in"], 37);
  EXPECT_EQ(report["documents_out"], 31);
  std::uint64_t dropped = 0;
  for (const auto& stage : report["stages"]) {
    for (const auto& [reason, count] : stage["dropped"].items()) dropped += count.get<std::uint64_t>();
    EXPECT_EQ(stage["docs_in"].get<std::uint64_t>() - stage["docs_out"].get<std::uint64_t>(),
              [&] { std::uint64_t n = 0; for (const auto& [r, c] : stage["dropped"].items()) n += c.get<std::uint64_t>(); return n; }());
  }
  EXPECT_EQ(dropped, 6u);  // the report explains every dropped document
  EXPECT_EQ(summary.documents_out, 31u);
  fs::remove_all(corpus.dir);
}

TEST(CuratePipeline, OutputIsIdenticalWhateverThreadsBatchesAndMemory) {
  const Corpus corpus = write_corpus("determinism", false);
  std::vector<std::string> outputs;
  const int threads_before = omp_get_max_threads();
  for (const auto& [threads, batch, budget] : {std::tuple{1, 2048, 1024.0}, std::tuple{2, 3, 1024.0},
                                               std::tuple{2, 5, 0.0005}}) {
    auto options = options_for(corpus, "out" + std::to_string(outputs.size()));
    options.run.threads = threads;
    options.run.batch_docs = static_cast<std::uint64_t>(batch);
    options.run.memory_budget_mb = budget;
    options.exact_dedup.lines = true;
    const auto summary = run_curation(options, nullptr);
    if (budget < 1) {
      EXPECT_GT(summary.spilled_runs, 0u);  // the tiny budget really spilled
    }
    outputs.push_back(slurp(fs::path(options.output.dir) / "part-00000.jsonl") + "|" +
                      slurp(fs::path(options.output.dir) / "rejected" / "part-00000.jsonl"));
  }
  omp_set_num_threads(threads_before);
  EXPECT_FALSE(outputs[0].empty());
  EXPECT_EQ(outputs[0], outputs[1]);
  EXPECT_EQ(outputs[0], outputs[2]);
  fs::remove_all(corpus.dir);
}

TEST(CuratePipeline, BadRecordFailsWithFileAndLine) {
  const Corpus corpus = write_corpus("bad", true);
  const auto options = options_for(corpus, "out");
  try {
    run_curation(options, nullptr);
    FAIL() << "a malformed line must fail without skip_bad_records";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(corpus.input.string() + ":36: malformed JSON"), std::string::npos) << error.what();
  }
  fs::remove_all(corpus.dir);
}

// A failed run leaves nothing that looks finished: no shards, no report.json (an earlier
// run's included), no staging folder.
TEST(CuratePipeline, FailedRunLeavesNoOutput) {
  const Corpus good = write_corpus("ok_then_bad", false);
  auto options = options_for(good, "out");
  run_curation(options, nullptr);
  const fs::path out = options.output.dir;
  ASSERT_TRUE(fs::exists(out / "report.json"));
  ASSERT_TRUE(fs::exists(out / "part-00000.jsonl"));
  ASSERT_FALSE(fs::exists(staging_dir_for(out)));  // published and gone

  const Corpus bad = write_corpus("bad_after_ok", true);
  options.input.paths = {bad.input.string()};
  EXPECT_THROW(run_curation(options, nullptr), Error);
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(out)) left.push_back(entry.path().filename().string());
  EXPECT_TRUE(left.empty()) << "left behind: " << fmt::format("{}", fmt::join(left, ", "));
  fs::remove_all(good.dir);
  fs::remove_all(bad.dir);
}

TEST(CuratePipeline, MissingInputIsAnError) {
  CurateOptions options;
  options.input.paths = {"/nonexistent/corpus.jsonl"};
  options.output.dir = (fs::temp_directory_path() / "kiln_curate_missing").string();
  EXPECT_THROW(run_curation(options, nullptr), Error);
  options.input.paths.clear();
  EXPECT_THROW(run_curation(options, nullptr), Error);
}

// Perplexity = words in the document, so the expected order is known.
class WordCountScorer final : public DocumentScorer {
 public:
  double perplexity(std::string_view text) override {
    return static_cast<double>(std::count(text.begin(), text.end(), ' ') + 1);
  }
};

TEST(CuratePipeline, ModelScoresAreWrittenAndCut) {
  const Corpus corpus = write_corpus("scoring", false);
  auto options = options_for(corpus, "threshold");
  options.model_scoring.enabled = true;
  options.model_scoring.checkpoint = "unused";
  WordCountScorer scorer;
  run_curation(options, &scorer);
  std::vector<double> scores;
  for (const auto& doc : read_jsonl(fs::path(options.output.dir) / "part-00000.jsonl")) {
    scores.push_back(doc["perplexity"].get<double>());
  }
  ASSERT_EQ(scores.size(), 31u);
  std::vector<double> sorted = scores;
  std::sort(sorted.begin(), sorted.end());

  auto cut = options_for(corpus, "threshold_cut");
  cut.model_scoring = options.model_scoring;
  cut.model_scoring.max_perplexity = sorted[10];
  run_curation(cut, &scorer);
  for (const auto& doc : read_jsonl(fs::path(cut.output.dir) / "part-00000.jsonl")) EXPECT_LE(doc["perplexity"].get<double>(), sorted[10]);

  auto percentile = options_for(corpus, "percentile");
  percentile.model_scoring = options.model_scoring;
  percentile.model_scoring.keep_fraction = 0.5;
  const auto summary = run_curation(percentile, &scorer);
  const auto kept = read_jsonl(fs::path(percentile.output.dir) / "part-00000.jsonl");
  const double cutoff = sorted[static_cast<std::size_t>(std::ceil(0.5 * 31)) - 1];
  EXPECT_EQ(summary.perplexity_cutoff, cutoff);
  EXPECT_GE(kept.size(), 16u);
  for (const auto& doc : kept) EXPECT_LE(doc["perplexity"].get<double>(), cutoff);
  EXPECT_EQ(summary.report[Stage::ModelScoring].docs_out, kept.size());
  fs::remove_all(corpus.dir);
}

}  // namespace
}  // namespace kiln::curate
