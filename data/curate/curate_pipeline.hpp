#pragma once
// `kiln curate`: the whole pipeline over a corpus, streaming, multi-threaded and, under
// mpirun, sharded over ranks. Same input and options -> byte-identical output whatever the
// thread or rank count:
//   * records get global ordinals in input order and go in batches of run.batch_docs;
//     batch b belongs to rank b % ranks; threads split a batch and results are kept by index
//   * pass 1 (per document): parse, normalise, quality rules; survivors' dedup keys go into
//     external sorters (spilling past run.memory_budget_mb) and the documents into a spill
//   * dedup: every rank's keys are shipped to rank 0, which decides (lowest ordinal of each
//     exact group / LSH cluster is kept) and sends each rank the verdicts on its documents
//   * pass 2 (per document): dedup verdicts, decontamination, PII, model scoring; rank 0
//     receives every batch in order and writes the shards, rejected records and report
#include <cstdint>
#include <string>
#include <vector>

#include "data/curate/curate_options.hpp"
#include "data/curate/curate_report.hpp"
#include "data/curate/document_scorer.hpp"

namespace kiln::curate {

struct CurateSummary {
  CurateReport report;
  std::uint64_t documents_in = 0;
  std::uint64_t documents_out = 0;
  std::uint64_t input_bytes = 0;
  std::vector<std::string> shards;
  double seconds = 0;
  int ranks = 1;
  int threads = 1;
  std::uint64_t candidate_pairs = 0;
  std::uint64_t clusters = 0;
  std::size_t spilled_runs = 0;
  double perplexity_cutoff = 0;  // model_scoring.keep_fraction's threshold, when used
};

// scorer: required when options.model_scoring.enabled (the CLI builds one from the
// checkpoint). Throws kiln::Error for bad inputs. Writes output.dir on rank 0; the summary
// is complete on rank 0.
CurateSummary run_curation(const CurateOptions& options, DocumentScorer* scorer);

// The expected LSH detection probability at a few similarities, as a printable table.
std::string lsh_curve_table(int bands, int rows);

}  // namespace kiln::curate
