#pragma once
// Everything `kiln curate` can be told, grouped by stage. The recipe (curate_recipe.hpp)
// fills this from YAML and --set; the defaults are the published ones (recipes/CURATE.md).
#include <cstdint>
#include <string>
#include <vector>

#include "data/curate/c4_rules.hpp"
#include "data/curate/decontamination.hpp"
#include "data/curate/fineweb_rules.hpp"
#include "data/curate/gopher_quality.hpp"
#include "data/curate/gopher_repetition.hpp"
#include "data/curate/minhash.hpp"
#include "data/curate/normalizer.hpp"
#include "data/curate/pii.hpp"

namespace kiln::curate {

struct InputOptions {
  std::vector<std::string> paths;
  std::string text_field = "text";
  bool skip_bad_records = false;  // malformed JSON lines: skipped and counted, or fatal
};

struct OutputOptions {
  std::string dir;
  bool zstd = false;                         // part-*.jsonl.zst instead of part-*.jsonl
  std::uint64_t docs_per_shard = 100000;
  bool keep_rejected = false;                // DIR/rejected/part-*.jsonl with "stage" and "reason"
};

struct RunOptions {
  int threads = 0;                  // per rank; 0 = OpenMP's default (all cores)
  std::uint64_t batch_docs = 2048;  // unit of work; batch b goes to rank b % ranks
  double memory_budget_mb = 1024;   // dedup records kept in memory before spilling to disk
  std::string work_dir;             // spill files; default DIR/.curate-work
  bool progress = true;
};

struct ExactDedupOptions {
  bool enabled = true;
  bool normalized = true;   // hash the simplified text (case, punctuation, numbers folded)
  bool lines = false;       // also remove lines seen in an earlier kept document
  int line_min_chars = 20;  // shorter lines are never treated as duplicates
};

struct ModelScoringOptions {
  bool enabled = false;
  std::string checkpoint;       // run dir, checkpoints dir or step dir
  double max_perplexity = 0;    // keep documents at or below; 0 = no threshold
  double keep_fraction = 1.0;   // keep the lowest-perplexity fraction; 1 = all
  int max_tokens = 0;           // tokens scored per document; 0 = the model's context
  std::string field = "perplexity";
};

struct CurateOptions {
  InputOptions input;
  OutputOptions output;
  RunOptions run;
  NormalizeOptions normalize;
  GopherQualityOptions gopher_quality;
  GopherRepetitionOptions gopher_repetition;
  C4Options c4;
  FineWebOptions fineweb;
  ExactDedupOptions exact_dedup;
  MinHashOptions near_dedup;
  DecontaminationOptions decontamination;
  PiiOptions pii;
  ModelScoringOptions model_scoring;
};

}  // namespace kiln::curate
