#pragma once
// What `kiln plan` prints: one table, ordered as the plan is (layouts that fit first, each part
// by estimated step time), or the same as JSON for scripts (scripts/bench_parallel.py reads
// each stage's bytes_sent_per_step). Memory keys are the training report's categories, as in
// metrics.jsonl's memory_peak_bytes.
#include <nlohmann/json.hpp>
#include <string>

#include "trainer/config/recipe.hpp"
#include "trainer/plan/layout_plan.hpp"

namespace kiln::plan {

// What the plan was asked: for the header.
struct PlanRequest {
  std::string recipe_path;
  int gpus = 1;
  bool with_cp_and_recompute = false;
  PlanAssumptions assumptions;
  // The table shows each layout with its best micro-batch size (the first in the plan's order)
  // unless every micro-batch size is asked for; the JSON always holds every one.
  bool all_micro_batches = false;
};

// top: rows shown (0: all).
std::string plan_table(const Plan& plan, const config::Recipe& base, const PlanRequest& request, std::size_t top);
nlohmann::json plan_json(const Plan& plan, const config::Recipe& base, const PlanRequest& request);
nlohmann::json layout_json(const LayoutEstimate& estimate);

}  // namespace kiln::plan
