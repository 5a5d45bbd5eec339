#pragma once
// The per-document work of curation, in the two passes the pipeline makes:
//   first pass:  parse -> normalise -> Gopher quality -> Gopher repetition -> C4 -> FineWeb,
//                then the hashes dedup needs (exact hash, LSH bands, line hashes)
//   second pass: (after the corpus-wide dedup decisions) exact/near/line dedup verdicts ->
//                decontamination -> PII
// Each document carries a trace of what every stage did to it; the pipeline folds the
// traces into the report in ordinal order, so threads never share counters.
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "data/curate/c4_rules.hpp"
#include "data/curate/curate_options.hpp"
#include "data/curate/curate_report.hpp"
#include "data/curate/decontamination.hpp"
#include "data/curate/dedup_index.hpp"
#include "data/curate/minhash.hpp"
#include "data/curate/pii.hpp"
#include "data/curate/record_reader.hpp"

namespace kiln::curate {

struct DocTrace {
  struct Step {
    Stage stage;
    std::uint64_t bytes_in, bytes_out;
    std::string reason;  // "" = passed
  };
  struct Counter {
    Stage stage;
    const char* name;
    std::uint64_t amount;
  };
  std::vector<Step> steps;
  std::vector<Counter> counters;
  void apply(CurateReport& report) const;
};

// A document between the passes (also what the spill file stores).
struct CuratedDoc {
  std::uint64_t ordinal = 0;
  bool kept = false;
  Stage stage = Stage::Read;       // where it was dropped, when !kept
  std::string reason;
  std::string record;              // the JSON record (for text inputs, one kiln built)
  std::size_t value_begin = 0;     // span of the text's JSON value inside record
  std::size_t value_end = 0;
  std::string text;                // the curated text (kept documents)
  double score = std::numeric_limits<double>::quiet_NaN();
  DocTrace trace;
  std::string fatal_error;         // a bad record under the "fail" policy: "file:line: why"
};

struct DedupKeys {
  std::uint64_t exact_hash = 0;
  std::vector<std::uint64_t> bands;
  std::vector<std::uint64_t> lines;
};

class FirstPass {
 public:
  FirstPass(const CurateOptions& options, const RecordReader& reader);
  void run(const RawRecord& raw, CuratedDoc& doc, DedupKeys& keys) const;

 private:
  bool parse(const RawRecord& raw, CuratedDoc& doc) const;
  bool filter(CuratedDoc& doc) const;
  void dedup_keys(const CuratedDoc& doc, DedupKeys& keys) const;

  const CurateOptions& options_;
  const RecordReader& reader_;
  MinHasher minhasher_;
  BadWords bad_words_;
};

// The dedup verdicts that concern one rank's documents.
struct RankDecisions {
  std::vector<std::uint64_t> exact_removed;
  std::vector<std::uint64_t> near_removed;
  std::vector<HashRecord> line_removals;  // sorted by ordinal
};

class SecondPass {
 public:
  SecondPass(const CurateOptions& options, const RankDecisions& decisions, const Decontaminator* decontaminator,
             const PiiRedactor* redactor);
  void run(CuratedDoc& doc) const;

 private:
  bool dedup(CuratedDoc& doc) const;
  bool remove_duplicate_lines(CuratedDoc& doc) const;

  const CurateOptions& options_;
  const RankDecisions& decisions_;
  const Decontaminator* decontaminator_;
  const PiiRedactor* redactor_;
};

// Hash of a line for line dedup (stripped), or 0 when it is too short to count.
std::uint64_t line_dedup_hash(std::string_view line, int min_chars);
// Hash for exact dedup: of the simplified words when `normalized`, else of the bytes.
std::uint64_t exact_dedup_hash(std::string_view text, bool normalized);

// The output line of a document: kept -> record with the curated text (and score);
// dropped -> the record with "stage" and "reason" added.
std::string output_line(const CuratedDoc& doc, const CurateOptions& options);

}  // namespace kiln::curate
