#include "data/curate/curate_pipeline.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>
#include <optional>

#include "data/curate/byte_stream.hpp"
#include "data/curate/curate_recipe.hpp"
#include "data/curate/dedup_index.hpp"
#include "data/curate/document_stages.hpp"
#include "data/curate/json_record.hpp"
#include "data/curate/output_shards.hpp"
#include "parallel/mpi_environment.hpp"
#include "trainer/core/atomic_file.hpp"
#include "trainer/core/error.hpp"

namespace kiln::curate {

namespace {

namespace fs = std::filesystem;
using parallel::MpiEnvironment;
using Clock = std::chrono::steady_clock;

constexpr int kTagDedupRecords = 6101;
constexpr int kTagDecisions = 6102;
constexpr int kTagBatch = 6103;
constexpr int kTagReport = 6104;
constexpr std::size_t kMessageBytes = 8 << 20;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int owner_of_batch(std::uint64_t batch, int ranks) { return static_cast<int>(batch % static_cast<std::uint64_t>(ranks)); }

// ---- spill file of pass 1: the documents pass 2 needs, batch by batch ---------------------

void put_doc(ByteWriter& out, const CuratedDoc& doc) {
  out.put<std::uint64_t>(doc.ordinal);
  out.put<std::uint8_t>(doc.kept ? 1 : 0);
  out.put<std::uint8_t>(static_cast<std::uint8_t>(doc.stage));
  out.put_string(doc.reason);
  out.put_string(doc.record);
  out.put<std::uint64_t>(doc.value_begin);
  out.put<std::uint64_t>(doc.value_end);
  out.put_string(doc.text);
}

CuratedDoc get_doc(ByteReader& in) {
  CuratedDoc doc;
  doc.ordinal = in.get<std::uint64_t>();
  doc.kept = in.get<std::uint8_t>() != 0;
  doc.stage = static_cast<Stage>(in.get<std::uint8_t>());
  doc.reason = in.get_string();
  doc.record = in.get_string();
  doc.value_begin = in.get<std::uint64_t>();
  doc.value_end = in.get<std::uint64_t>();
  doc.text = in.get_string();
  return doc;
}

class SpillWriter {
 public:
  explicit SpillWriter(const fs::path& path) : out_(path, std::ios::binary | std::ios::trunc), path_(path) {
    if (!out_) fail("cannot create spill file '{}'", path.string());
  }
  void write_batch(const std::vector<CuratedDoc>& docs, bool keep_rejected) {
    ByteWriter batch;
    for (const auto& doc : docs) {
      if (doc.kept || keep_rejected) put_doc(batch, doc);
    }
    const std::uint64_t size = batch.bytes().size();
    out_.write(reinterpret_cast<const char*>(&size), sizeof(size));
    out_.write(batch.bytes().data(), static_cast<std::streamsize>(size));
    if (!out_) fail("write error on spill file '{}' (disk full?)", path_.string());
  }
  void close() {
    out_.close();
    if (!out_) fail("write error on spill file '{}' (disk full?)", path_.string());
  }

 private:
  std::ofstream out_;
  fs::path path_;
};

class SpillReader {
 public:
  explicit SpillReader(const fs::path& path) : in_(path, std::ios::binary) {
    if (!in_) fail("cannot reopen spill file '{}'", path.string());
  }
  std::vector<CuratedDoc> read_batch() {
    std::uint64_t size = 0;
    in_.read(reinterpret_cast<char*>(&size), sizeof(size));
    std::string bytes(size, '\0');
    in_.read(bytes.data(), static_cast<std::streamsize>(size));
    if (!in_) fail("curate: spill file ended early");
    ByteReader reader(bytes);
    std::vector<CuratedDoc> docs;
    while (!reader.done()) docs.push_back(get_doc(reader));
    return docs;
  }

 private:
  std::ifstream in_;
};

// ---- pass 1 -----------------------------------------------------------------------------

struct FirstPassTotals {
  std::uint64_t records = 0;
  std::uint64_t batches = 0;
  std::uint64_t input_bytes = 0;
};

void add_dedup_keys(DedupIndex& index, const CuratedDoc& doc, const DedupKeys& keys, const CurateOptions& options) {
  if (options.exact_dedup.enabled) index.add(DedupKind::Exact, keys.exact_hash, doc.ordinal);
  for (const auto band : keys.bands) index.add(DedupKind::Band, band, doc.ordinal);
  for (const auto line : keys.lines) index.add(DedupKind::Line, line, doc.ordinal);
}

void process_first_batch(const FirstPass& pass, const std::vector<RawRecord>& batch, const CurateOptions& options,
                         DedupIndex& index, CurateReport& report, SpillWriter& spill) {
  std::vector<CuratedDoc> docs(batch.size());
  std::vector<DedupKeys> keys(batch.size());
  const auto count = static_cast<std::int64_t>(batch.size());
#pragma omp parallel for schedule(dynamic, 4)
  for (std::int64_t i = 0; i < count; ++i) pass.run(batch[i], docs[i], keys[i]);
  std::size_t reported = 0;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    const auto& doc = docs[i];
    if (!doc.fatal_error.empty()) fail("{}", doc.fatal_error);  // the first bad record, in input order
    if (doc.stage == Stage::Read && !doc.kept && reported++ < 5) {
      fmt::print(stderr, "kiln: skipping bad record {}\n", doc.record);
    }
    doc.trace.apply(report);
    if (doc.kept) add_dedup_keys(index, doc, keys[i], options);
  }
  spill.write_batch(docs, options.output.keep_rejected);
}

FirstPassTotals first_pass(const CurateOptions& options, const MpiEnvironment& mpi, DedupIndex& index,
                           CurateReport& report, const fs::path& spill_path) {
  std::vector<fs::path> inputs(options.input.paths.begin(), options.input.paths.end());
  RecordReader reader(std::move(inputs));
  const FirstPass pass(options, reader);
  SpillWriter spill(spill_path);
  const auto start = Clock::now();
  FirstPassTotals totals;
  std::vector<RawRecord> batch;
  std::uint64_t in_batch = 0;
  auto finish_batch = [&] {
    if (owner_of_batch(totals.batches, mpi.world_size()) == mpi.rank()) {
      process_first_batch(pass, batch, options, index, report, spill);
    }
    batch.clear();
    in_batch = 0;
    ++totals.batches;
    if (options.run.progress && mpi.is_root() && totals.batches % 64 == 0) {
      fmt::print(stderr, "curate: pass 1: {} documents read, {:.0f} docs/s\n", totals.records,
                 static_cast<double>(totals.records) / seconds_since(start));
    }
  };
  RawRecord record;
  while (reader.next(record)) {
    ++totals.records;
    // Every rank reads every record (ordinals must be global) but keeps only its batches.
    if (owner_of_batch(totals.batches, mpi.world_size()) == mpi.rank()) batch.push_back(std::move(record));
    if (++in_batch == options.run.batch_docs) finish_batch();
  }
  if (in_batch > 0) finish_batch();
  spill.close();
  totals.input_bytes = reader.bytes_read();
  return totals;
}

// ---- dedup exchange -------------------------------------------------------------------

constexpr DedupKind kDedupKinds[] = {DedupKind::Exact, DedupKind::Band, DedupKind::Line};

void send_dedup_records(DedupIndex& index, const MpiEnvironment& mpi) {
  for (const auto kind : kDedupKinds) {
    ByteWriter chunk;
    index.drain(kind, [&](const HashRecord& record) {
      chunk.put(record);
      if (chunk.bytes().size() >= kMessageBytes) {
        mpi.send_bytes(chunk.bytes(), 0, kTagDedupRecords);
        chunk.bytes().clear();
      }
    });
    if (!chunk.bytes().empty()) mpi.send_bytes(chunk.bytes(), 0, kTagDedupRecords);
    mpi.send_bytes("", 0, kTagDedupRecords);  // end of this kind
  }
}

void receive_dedup_records(DedupIndex& index, const MpiEnvironment& mpi) {
  for (int source = 1; source < mpi.world_size(); ++source) {
    for (const auto kind : kDedupKinds) {
      while (true) {
        const std::string chunk = mpi.receive_bytes(source, kTagDedupRecords);
        if (chunk.empty()) break;
        ByteReader reader(chunk);
        while (!reader.done()) {
          const auto record = reader.get<HashRecord>();
          index.add(kind, record.hash, record.ordinal);
        }
      }
    }
  }
}

RankDecisions decisions_for_rank(const DedupDecisions& all, int rank, int ranks, std::uint64_t batch_docs) {
  auto mine = [&](std::uint64_t ordinal) { return owner_of_batch(ordinal / batch_docs, ranks) == rank; };
  RankDecisions decisions;
  std::copy_if(all.exact_removed.begin(), all.exact_removed.end(), std::back_inserter(decisions.exact_removed), mine);
  std::copy_if(all.near_removed.begin(), all.near_removed.end(), std::back_inserter(decisions.near_removed), mine);
  std::copy_if(all.line_removals.begin(), all.line_removals.end(), std::back_inserter(decisions.line_removals),
               [&](const HashRecord& r) { return mine(r.ordinal); });
  return decisions;
}

std::string pack_decisions(const RankDecisions& decisions) {
  ByteWriter out;
  out.put<std::uint64_t>(decisions.exact_removed.size());
  for (auto ordinal : decisions.exact_removed) out.put(ordinal);
  out.put<std::uint64_t>(decisions.near_removed.size());
  for (auto ordinal : decisions.near_removed) out.put(ordinal);
  out.put<std::uint64_t>(decisions.line_removals.size());
  for (const auto& record : decisions.line_removals) out.put(record);
  return std::move(out.bytes());
}

RankDecisions unpack_decisions(const std::string& bytes) {
  ByteReader in(bytes);
  RankDecisions decisions;
  decisions.exact_removed.resize(in.get<std::uint64_t>());
  for (auto& ordinal : decisions.exact_removed) ordinal = in.get<std::uint64_t>();
  decisions.near_removed.resize(in.get<std::uint64_t>());
  for (auto& ordinal : decisions.near_removed) ordinal = in.get<std::uint64_t>();
  decisions.line_removals.resize(in.get<std::uint64_t>());
  for (auto& record : decisions.line_removals) record = in.get<HashRecord>();
  return decisions;
}

RankDecisions exchange_dedup(DedupIndex& index, const CurateOptions& options, const MpiEnvironment& mpi,
                             CurateSummary& summary) {
  if (!mpi.is_root()) {
    send_dedup_records(index, mpi);
    return unpack_decisions(mpi.receive_bytes(0, kTagDecisions));
  }
  receive_dedup_records(index, mpi);
  const DedupDecisions all = index.decide();
  summary.candidate_pairs = all.candidate_pairs;
  summary.clusters = all.clusters;
  summary.spilled_runs = all.spilled_runs;
  for (int rank = 1; rank < mpi.world_size(); ++rank) {
    mpi.send_bytes(pack_decisions(decisions_for_rank(all, rank, mpi.world_size(), options.run.batch_docs)), rank,
                   kTagDecisions);
  }
  return decisions_for_rank(all, 0, mpi.world_size(), options.run.batch_docs);
}

// ---- pass 2 -----------------------------------------------------------------------------

struct OutputEntry {
  bool kept = false;
  double score = std::numeric_limits<double>::quiet_NaN();
  std::string line;
};

std::string pack_entries(const std::vector<OutputEntry>& entries) {
  ByteWriter out;
  for (const auto& entry : entries) {
    out.put<std::uint8_t>(entry.kept ? 1 : 0);
    out.put<double>(entry.score);
    out.put_string(entry.line);
  }
  return std::move(out.bytes());
}

std::vector<OutputEntry> unpack_entries(const std::string& bytes) {
  ByteReader in(bytes);
  std::vector<OutputEntry> entries;
  while (!in.done()) {
    OutputEntry entry;
    entry.kept = in.get<std::uint8_t>() != 0;
    entry.score = in.get<double>();
    entry.line = in.get_string();
    entries.push_back(std::move(entry));
  }
  return entries;
}

void score_documents(std::vector<CuratedDoc>& docs, const CurateOptions& options, DocumentScorer& scorer) {
  const auto& scoring = options.model_scoring;
  for (auto& doc : docs) {
    if (!doc.kept) continue;
    doc.score = scorer.perplexity(doc.text);
    const bool over = scoring.max_perplexity > 0 && !std::isnan(doc.score) && doc.score > scoring.max_perplexity;
    const std::size_t bytes = doc.text.size();
    doc.trace.steps.push_back({Stage::ModelScoring, bytes, over ? 0 : bytes, over ? "perplexity_above_threshold" : ""});
    if (over) {
      doc.kept = false;
      doc.stage = Stage::ModelScoring;
      doc.reason = "perplexity_above_threshold";
    }
  }
}

std::vector<OutputEntry> process_second_batch(std::vector<CuratedDoc>& docs, const SecondPass& pass,
                                              const CurateOptions& options, DocumentScorer* scorer,
                                              CurateReport& report) {
  const auto count = static_cast<std::int64_t>(docs.size());
#pragma omp parallel for schedule(dynamic, 4)
  for (std::int64_t i = 0; i < count; ++i) {
    docs[i].trace.steps.clear();
    docs[i].trace.counters.clear();
    pass.run(docs[i]);
  }
  if (scorer != nullptr) score_documents(docs, options, *scorer);
  std::vector<OutputEntry> entries(docs.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (std::int64_t i = 0; i < count; ++i) {
    const auto& doc = docs[i];
    if (doc.kept || options.output.keep_rejected) entries[i] = {doc.kept, doc.score, output_line(doc, options)};
  }
  std::vector<OutputEntry> kept;
  for (std::size_t i = 0; i < docs.size(); ++i) {
    docs[i].trace.apply(report);
    if (!entries[i].line.empty()) kept.push_back(std::move(entries[i]));
  }
  return kept;
}

// Rank 0's end of pass 2: shards and rejected records in input order. With a percentile
// cut-off, kept records wait in a file until every score is known.
class OutputSink {
 public:
  OutputSink(const CurateOptions& options, const fs::path& work_dir)
      : options_(options), kept_(staging_dir_for(options.output.dir), options.output.zstd, options.output.docs_per_shard),
        percentile_(options.model_scoring.enabled && options.model_scoring.keep_fraction < 1.0),
        held_path_(work_dir / "held.bin") {
    if (options.output.keep_rejected) {
      rejected_.emplace(staging_dir_for(options.output.dir) / "rejected", options.output.zstd, options.output.docs_per_shard);
    }
    if (percentile_) held_.open(held_path_, std::ios::binary | std::ios::trunc);
  }

  void consume(const std::vector<OutputEntry>& entries) {
    for (const auto& entry : entries) {
      if (!entry.kept) rejected_->write(entry.line);
      else if (!percentile_) kept_.write(entry.line);
      else hold(entry);
    }
  }

  void finish(CurateSummary& summary) {
    if (percentile_) release_held(summary);
    kept_.close();
    if (rejected_) rejected_->close();
    summary.documents_out = kept_.documents();
    summary.shards = kept_.shard_names();
  }

 private:
  void hold(const OutputEntry& entry) {
    scores_.push_back(entry.score);
    const std::string packed = pack_entries({entry});
    const std::uint64_t size = packed.size();
    held_.write(reinterpret_cast<const char*>(&size), sizeof(size));
    held_.write(packed.data(), static_cast<std::streamsize>(size));
  }

  // Keeps the keep_fraction of documents with the lowest perplexity (ties at the cut-off stay).
  void release_held(CurateSummary& summary) {
    held_.close();
    std::vector<double> sorted;
    std::copy_if(scores_.begin(), scores_.end(), std::back_inserter(sorted), [](double s) { return !std::isnan(s); });
    std::sort(sorted.begin(), sorted.end());
    double cutoff = std::numeric_limits<double>::infinity();
    if (!sorted.empty()) {
      const auto keep = static_cast<std::size_t>(std::ceil(options_.model_scoring.keep_fraction * static_cast<double>(sorted.size())));
      cutoff = sorted[std::clamp<std::size_t>(keep, 1, sorted.size()) - 1];
    }
    summary.perplexity_cutoff = cutoff;
    std::ifstream in(held_path_, std::ios::binary);
    auto& stats = summary.report[Stage::ModelScoring];
    for (std::size_t i = 0; i < scores_.size(); ++i) {
      std::uint64_t size = 0;
      in.read(reinterpret_cast<char*>(&size), sizeof(size));
      std::string packed(size, '\0');
      in.read(packed.data(), static_cast<std::streamsize>(size));
      const OutputEntry entry = unpack_entries(packed).front();
      if (std::isnan(entry.score) || entry.score <= cutoff) {
        kept_.write(entry.line);
        continue;
      }
      // Pass 2 counted it as passing; now it is a drop of this stage.
      const std::size_t bytes = entry.line.size();
      --stats.docs_out;
      stats.bytes_out -= std::min<std::uint64_t>(stats.bytes_out, bytes);
      ++stats.dropped["perplexity_above_percentile"];
      if (rejected_) {
        std::string line = set_json_field(entry.line, "stage", json_string("model_scoring"));
        rejected_->write(set_json_field(line, "reason", json_string("perplexity_above_percentile")));
      }
    }
    std::error_code ignored;
    fs::remove(held_path_, ignored);
  }

  const CurateOptions& options_;
  ShardWriter kept_;
  std::optional<ShardWriter> rejected_;
  bool percentile_;
  fs::path held_path_;
  std::ofstream held_;
  std::vector<double> scores_;
};

void second_pass(const CurateOptions& options, const MpiEnvironment& mpi, const RankDecisions& decisions,
                 const FirstPassTotals& totals, const fs::path& spill_path, const fs::path& work_dir,
                 DocumentScorer* scorer, CurateReport& report, CurateSummary& summary) {
  std::optional<Decontaminator> decontaminator;
  if (options.decontamination.enabled) decontaminator.emplace(options.decontamination);
  std::optional<PiiRedactor> redactor;
  if (options.pii.enabled) redactor.emplace(options.pii);
  const SecondPass pass(options, decisions, decontaminator ? &*decontaminator : nullptr, redactor ? &*redactor : nullptr);
  SpillReader spill(spill_path);

  std::optional<OutputSink> sink;
  if (mpi.is_root()) sink.emplace(options, work_dir);
  for (std::uint64_t batch = 0; batch < totals.batches; ++batch) {
    const int owner = owner_of_batch(batch, mpi.world_size());
    if (owner == mpi.rank()) {
      auto docs = spill.read_batch();
      auto entries = process_second_batch(docs, pass, options, scorer, report);
      if (mpi.is_root()) sink->consume(entries);
      else mpi.send_bytes(pack_entries(entries), 0, kTagBatch);
    } else if (mpi.is_root()) {
      sink->consume(unpack_entries(mpi.receive_bytes(owner, kTagBatch)));
    }
  }
  if (mpi.is_root()) {
    // Every rank's counts are needed before the percentile cut-off adjusts them.
    for (int rank = 1; rank < mpi.world_size(); ++rank) {
      report.merge(CurateReport::from_stages_json(nlohmann::json::parse(mpi.receive_bytes(rank, kTagReport))));
    }
    summary.report = report;
    sink->finish(summary);
  } else {
    mpi.send_bytes(report.stages_json().dump(), 0, kTagReport);
  }
}

void mark_enabled_stages(const CurateOptions& options, CurateReport& report) {
  report[Stage::Read].enabled = true;
  report[Stage::Normalize].enabled = options.normalize.enabled;
  report[Stage::GopherQuality].enabled = options.gopher_quality.enabled;
  report[Stage::GopherRepetition].enabled = options.gopher_repetition.enabled;
  report[Stage::C4].enabled = options.c4.enabled;
  report[Stage::FineWeb].enabled = options.fineweb.enabled;
  report[Stage::ExactDedup].enabled = options.exact_dedup.enabled;
  report[Stage::NearDedup].enabled = options.near_dedup.enabled;
  report[Stage::LineDedup].enabled = options.exact_dedup.lines;
  report[Stage::Decontamination].enabled = options.decontamination.enabled;
  report[Stage::Pii].enabled = options.pii.enabled;
  report[Stage::ModelScoring].enabled = options.model_scoring.enabled;
}

nlohmann::json report_json(const CurateOptions& options, const CurateSummary& summary) {
  nlohmann::json curve = nlohmann::json::array();
  for (double s : {0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95}) {
    curve.push_back({{"similarity", s},
                     {"probability", lsh_detection_probability(s, options.near_dedup.bands, options.near_dedup.rows)}});
  }
  return {
      {"inputs", options.input.paths},
      {"output_dir", options.output.dir},
      {"shards", summary.shards},
      {"documents_in", summary.documents_in},
      {"documents_out", summary.documents_out},
      {"input_bytes", summary.input_bytes},
      {"stages", summary.report.stages_json()},
      {"near_dedup",
       {{"enabled", options.near_dedup.enabled},
        {"bands", options.near_dedup.bands},
        {"rows", options.near_dedup.rows},
        {"shingle_words", options.near_dedup.shingle_words},
        {"candidate_pairs", summary.candidate_pairs},
        {"clusters", summary.clusters},
        {"detection_curve", curve}}},
      {"run", {{"ranks", summary.ranks}, {"threads_per_rank", summary.threads}, {"seconds", summary.seconds},
               {"spilled_sort_runs", summary.spilled_runs}}},
  };
}

// The report names the input files; a file name that is not valid UTF-8 is written with
// U+FFFD for its bad bytes (JSON has no way to carry them) instead of failing the run.
std::string report_text(const nlohmann::json& report) {
  return report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// The run's outputs appear only once everything succeeded: the shards, then report.json,
// which marks the directory as a finished run's.
void publish_output(const fs::path& dir, const nlohmann::json& report) {
  const std::string text = report_text(report);
  publish_staged_output(dir);
  write_file_atomically(dir / "report.json", text);
}

}  // namespace

std::string lsh_curve_table(int bands, int rows) {
  std::string table = fmt::format("near-dedup LSH ({} bands x {} rows): P(candidate | Jaccard s) = 1 - (1 - s^{})^{}\n",
                                  bands, rows, rows, bands);
  for (double s : {0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95}) {
    table += fmt::format("  s = {:.2f}  P = {:.4f}\n", s, lsh_detection_probability(s, bands, rows));
  }
  return table;
}

namespace {

fs::path work_dir_for(const CurateOptions& options) {
  return options.run.work_dir.empty() ? fs::path(options.output.dir) / ".curate-work" : fs::path(options.run.work_dir);
}

fs::path rank_dir_for(const CurateOptions& options, int rank) {
  return work_dir_for(options) / fmt::format("rank-{:05d}", rank);
}

CurateSummary curate(const CurateOptions& options, DocumentScorer* scorer) {
  if (const auto problems = check_curate_options(options); !problems.empty()) {
    std::string message = "the curate options are incomplete:";
    for (const auto& problem : problems) message += "\n  " + problem;
    fail("{}", message);
  }
  if (options.model_scoring.enabled && scorer == nullptr) fail("model scoring is enabled but no scorer was given");
  parallel::use_threads(options.run.threads);
  const auto& mpi = MpiEnvironment::instance();
  const auto start = Clock::now();
  const fs::path out_dir = options.output.dir;
  const fs::path work_dir = work_dir_for(options);
  const fs::path rank_dir = rank_dir_for(options, mpi.rank());
  if (mpi.is_root()) {
    fs::create_directories(out_dir);
    clear_previous_output(out_dir);
  }
  mpi.barrier();
  fs::create_directories(rank_dir);
  // Evaluation sets are read up front so that a bad one fails before hours of work.
  if (options.decontamination.enabled) Decontaminator probe(options.decontamination);

  CurateSummary summary;
  summary.ranks = mpi.world_size();
  summary.threads = omp_get_max_threads();
  CurateReport report;
  mark_enabled_stages(options, report);
  const auto budget = static_cast<std::size_t>(options.run.memory_budget_mb * 1024 * 1024);
  DedupIndex index(rank_dir / "sort", budget);
  const fs::path spill_path = rank_dir / "pass1.bin";
  const FirstPassTotals totals = first_pass(options, mpi, index, report, spill_path);
  const RankDecisions decisions = exchange_dedup(index, options, mpi, summary);
  second_pass(options, mpi, decisions, totals, spill_path, rank_dir, scorer, report, summary);

  std::error_code ignored;
  fs::remove_all(rank_dir, ignored);
  mpi.barrier();
  summary.documents_in = totals.records;
  summary.input_bytes = totals.input_bytes;
  summary.seconds = seconds_since(start);
  if (mpi.is_root()) {
    fs::remove_all(work_dir, ignored);
    publish_output(out_dir, report_json(options, summary));
  }
  return summary;
}

}  // namespace

CurateSummary run_curation(const CurateOptions& options, DocumentScorer* scorer) {
  try {
    return curate(options, scorer);
  } catch (...) {
    // Nothing half-done stays behind: staged shards and spill files are removed, and
    // nothing was published.
    std::error_code ignored;
    const auto& mpi = MpiEnvironment::instance();
    fs::remove_all(rank_dir_for(options, mpi.rank()), ignored);
    if (mpi.is_root()) {
      fs::remove_all(staging_dir_for(options.output.dir), ignored);
      if (options.run.work_dir.empty()) fs::remove_all(work_dir_for(options), ignored);
    }
    throw;
  }
}

}  // namespace kiln::curate
