#pragma once
// The layouts `kiln plan` weighs (DESIGN.md §6): N GPUs split into dp x tp x pp x cp, with
// ZeRO-1, sequence parallelism, activation recomputation and a micro-batch size, and the
// check that kiln train would accept one.
//
// Rank order (as parallel/process_grid.hpp, with cp between tp and dp): tp fastest, then cp,
// then dp, then pp. cp (context parallelism) and recompute are ahead of kiln train: the
// estimator models them (cp_and_recompute.hpp), but the recipe has no keys for them yet, so
// the enumeration keeps cp = 1 and recompute none unless PlanSpace::with_cp_and_recompute (the
// table stays short for the common case).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trainer/config/recipe.hpp"

namespace kiln::plan {

// none: every block keeps all it saves for the backward. selective: blocks keep their input,
// the attention output and its logsumexp and the residual after attention; the norms, q|k|v
// and the MLP's intermediates are recomputed. full: blocks keep only their input.
using Recompute = config::Recompute;  // the recipe's train.recompute
std::string_view recompute_name(Recompute recompute);
// Throws kiln::Error naming the accepted words.
Recompute recompute_from_name(std::string_view name);

struct PlanLayout {
  int dp = 1, tp = 1, pp = 1, cp = 1;
  int zero = 0;
  bool sequence_parallel = false;
  Recompute recompute = Recompute::none;
  std::int64_t micro_batch_size = 1;  // sequences per forward/backward on one rank
  int micro_batches = 1;              // per dp rank per step (filled in by LayoutChecker)

  int gpus() const { return dp * tp * pp * cp; }
  // Ranks that hold the same parameters and split the batch's gradient: dp x cp.
  int gradient_replicas() const { return dp * cp; }
  bool operator==(const PlanLayout&) const = default;
};

// "dp 2 tp 2 pp 1 cp 1 zero 1 sp on recompute none micro-batch 2 x 4"
std::string describe(const PlanLayout& layout);

// A recipe as kiln train reads it: the file's text (named `name` in messages), then the user's
// --set overrides.
struct RecipeSource {
  std::string text;
  std::string name;
  std::vector<std::string> overrides;
};

// Whether kiln train would run a layout, asked of the trainer's own checks: the recipe with the
// layout's keys set (parallel.dp/tp/pp/zero/sequence_parallel, train.micro_batch_size and
// parallel.micro_batches auto, after the user's overrides of other keys) is loaded and
// checked as `kiln train RECIPE --set ...` loads it, and resolved with config::resolve_layout
// against dp x tp x pp ranks.
class LayoutChecker {
 public:
  // vocab_size: the model's, resolved from the tokenizer when the recipe leaves it to it.
  LayoutChecker(RecipeSource source, std::int64_t vocab_size);

  struct Checked {
    PlanLayout layout;      // micro_batches filled in
    config::Recipe recipe;  // what kiln train would run
  };
  // Throws kiln::Error with the check's message when kiln train would refuse the layout (cp:
  // the sequence must split into cp equal parts, and each into tp chunks under sequence
  // parallelism).
  Checked check(PlanLayout layout) const;

 private:
  RecipeSource source_;
  std::int64_t vocab_size_ = 0;
};

struct PlanSpace {
  int gpus = 1;
  int max_tp = 8;  // tensor parallelism stays inside a node
  bool with_cp_and_recompute = false;
};

// Every candidate layout of space.gpus GPUs, unchecked: tp <= max_tp, zero 1 only where there is
// more than one gradient replica, sequence parallelism only with tp > 1, micro-batch sizes
// dividing each dp rank's share of the batch; cp > 1 and recomputation only with
// space.with_cp_and_recompute.
std::vector<PlanLayout> candidate_layouts(const config::Recipe& base, const PlanSpace& space);

}  // namespace kiln::plan
