#include "trainer/plan/plan_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "trainer/metrics/progress_line.hpp"
#include "trainer/model/model_config.hpp"

namespace kiln::plan {

namespace {

using memory::MemoryCategory;

// 9.4e-6 -> "9.4 us", 0.0123 -> "12.3 ms", 0.9999 -> "1 s", 1.882 -> "1.88 s" (3 digits; a value
// that rounds up to 1000 of a unit is written in the next).
std::string seconds(double value) {
  if (value < 999.5e-6) return fmt::format("{:.3g} us", value * 1e6);
  if (value < 0.9995) return fmt::format("{:.3g} ms", value * 1e3);
  return fmt::format("{:.3g} s", value);
}

std::string sent(double bytes) { return metrics::format_bytes(static_cast<std::uint64_t>(bytes + 0.5)); }

std::string model_line(const config::Recipe& base, const PlanRequest& request) {
  const model::ModelConfig m = model::from_recipe(base.model, 1);
  const int nodes = (request.gpus + request.assumptions.gpus_per_node - 1) / request.assumptions.gpus_per_node;
  return fmt::format(
      "kiln plan {} | {} model: {} parameters, {} layers, d_model {}, {} heads ({} kv), vocab {} | seq_len {}, "
      "batch {} = {} tokens/step | {} GPU(s) on {} node(s)",
      request.recipe_path, model::family_name(m.family),
      metrics::format_count(static_cast<double>(model::parameter_count(m))), m.n_layers, m.d_model, m.n_heads,
      m.n_kv_heads, m.vocab_size, base.train.seq_len, base.train.batch_size, base.train.tokens_per_step(), request.gpus,
      nodes);
}

std::string enumeration_line(const Plan& plan, const PlanRequest& request) {
  std::string line =
      request.with_cp_and_recompute
          ? "enumerated: cp and recompute included (--with-cp-and-recompute)"
          : "enumerated: cp = 1 and recompute none (--with-cp-and-recompute adds context parallelism and activation "
            "recomputation)";
  if (plan.refused > 0)
    line += fmt::format("; {} candidate(s) refused by kiln train's checks, e.g. {}", plan.refused, plan.first_refusal);
  return line;
}

std::string fit_cell(const LayoutEstimate& e) {
  return e.fits() ? "fits" : "over by " + metrics::format_bytes(e.over_by_bytes());
}

std::string table_row(std::size_t index, const LayoutEstimate& e) {
  const PlanLayout& l = e.layout;
  const metrics::MemoryPeaks& m = e.memory;
  const std::uint64_t links = m[MemoryCategory::communication] + m[MemoryCategory::pipeline];
  return fmt::format(
      "{:>3} {:>3} {:>2} {:>2} {:>2} {:>4} {:>3} {:>9} {:>7} {:>4} | {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} | "
      "{:<20} | {:>10} {:>10} {:>10} {:>10} | {:>9} {:>10}",
      index, l.dp, l.tp, l.pp, l.cp, l.zero, l.sequence_parallel ? "on" : "off", recompute_name(l.recompute),
      fmt::format("{}x{}", l.micro_batch_size, l.micro_batches), e.bf16 ? "bf16" : "fp32",
      metrics::format_bytes(m[MemoryCategory::parameters]), metrics::format_bytes(m[MemoryCategory::gradients]),
      metrics::format_bytes(m[MemoryCategory::optimizer_state]), metrics::format_bytes(m[MemoryCategory::activations]),
      metrics::format_bytes(links), metrics::format_bytes(m.total), fit_cell(e), sent(e.traffic.tp), sent(e.traffic.cp),
      sent(e.traffic.pp + e.traffic.embedding), sent(e.traffic.dp), seconds(e.time.step_s),
      metrics::format_count(e.tokens_per_s));
}

std::string table_header() {
  return fmt::format(
      "{:>3} {:>3} {:>2} {:>2} {:>2} {:>4} {:>3} {:>9} {:>7} {:>4} | {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} | "
      "{:<20} | {:>10} {:>10} {:>10} {:>10} | {:>9} {:>10}",
      "#", "dp", "tp", "pp", "cp", "zero", "sp", "recompute", "micro", "prec", "params", "grads", "optimizer",
      "activation", "comm+pipe", "total", "vs GPU memory", "TP sent", "CP sent", "PP sent", "DP sent", "step",
      "tokens/s");
}

// The plan's layouts in order; unless all are asked for, only the first (best) micro-batch size
// of each layout.
std::vector<const LayoutEstimate*> table_rows(const Plan& plan, bool all_micro_batches) {
  std::vector<const LayoutEstimate*> rows;
  std::vector<PlanLayout> listed;
  for (const LayoutEstimate& estimate : plan.layouts) {
    PlanLayout layout = estimate.layout;
    layout.micro_batch_size = layout.micro_batches = 0;  // the layout, whatever its micro-batches
    if (!all_micro_batches && std::find(listed.begin(), listed.end(), layout) != listed.end()) continue;
    listed.push_back(layout);
    rows.push_back(&estimate);
  }
  return rows;
}

nlohmann::json traffic_json(const GroupBytes& bytes) {
  return {{"tp", bytes.tp}, {"cp", bytes.cp}, {"pp", bytes.pp}, {"dp", bytes.dp}, {"embedding", bytes.embedding}};
}

nlohmann::json stage_json(const StageEstimate& stage) {
  return {{"stage", stage.stage},
          {"blocks", stage.blocks},
          {"pipeline_slots", stage.pipeline_slots},
          {"parameters", stage.parameters},
          {"memory_bytes", metrics::memory_record(stage.memory)},
          {"bytes_sent_per_step", traffic_json(stage.traffic_per_step)}};
}

nlohmann::json model_json(const config::Recipe& base) {
  const model::ModelConfig m = model::from_recipe(base.model, 1);
  return {{"family", model::family_name(m.family)},
          {"parameters", model::parameter_count(m)},
          {"n_layers", m.n_layers},
          {"d_model", m.d_model},
          {"n_heads", m.n_heads},
          {"n_kv_heads", m.n_kv_heads},
          {"d_ff", m.d_ff},
          {"vocab_size", m.vocab_size}};
}

}  // namespace

std::string plan_table(const Plan& plan, const config::Recipe& base, const PlanRequest& request, std::size_t top) {
  std::string text =
      model_line(base, request) + "\n" + describe(request.assumptions) + "\n" + enumeration_line(plan, request) + "\n";
  if (plan.layouts.empty()) return text + "no layout of these GPUs passes kiln train's checks\n";
  text +=
      "memory per rank (the largest pipeline stage's), bytes sent per rank per step (the most of any stage), "
      "estimated step time; micro = micro-batch size x micro-batches per step\n";
  text += table_header() + "\n";
  std::vector<const LayoutEstimate*> rows = table_rows(plan, request.all_micro_batches);
  if (top != 0 && rows.size() > top) rows.resize(top);
  for (std::size_t i = 0; i < rows.size(); ++i) text += table_row(i + 1, *rows[i]) + "\n";
  if (rows.size() < plan.layouts.size())
    text += fmt::format("({} of {} layouts shown{}; --top 0 for every row{})\n", rows.size(), plan.layouts.size(),
                        request.all_micro_batches ? "" : ", each with its best micro-batch size",
                        request.all_micro_batches ? "" : ", --all-micro-batches for every micro-batch size");
  return text;
}

nlohmann::json layout_json(const LayoutEstimate& e) {
  const PlanLayout& l = e.layout;
  nlohmann::json stages = nlohmann::json::array();
  for (const StageEstimate& stage : e.stages) stages.push_back(stage_json(stage));
  return {{"dp", l.dp},
          {"tp", l.tp},
          {"pp", l.pp},
          {"cp", l.cp},
          {"zero", l.zero},
          {"sequence_parallel", l.sequence_parallel},
          {"recompute", recompute_name(l.recompute)},
          {"micro_batch_size", l.micro_batch_size},
          {"micro_batches", l.micro_batches},
          {"precision", e.bf16 ? "bf16" : "fp32"},
          {"memory_per_rank_bytes", metrics::memory_record(e.memory)},
          {"gpu_memory_bytes", e.gpu_memory_bytes},
          {"fits", e.fits()},
          {"over_by_bytes", e.over_by_bytes()},
          {"bytes_sent_per_step", traffic_json(e.traffic)},
          {"step_time_s", e.time.step_s},
          {"compute_s", e.time.compute_s},
          {"traffic_s", e.time.traffic_s},
          {"bubble_s", e.time.bubble_s},
          {"tokens_per_s", e.tokens_per_s},
          {"stages", stages}};
}

nlohmann::json plan_json(const Plan& plan, const config::Recipe& base, const PlanRequest& request) {
  nlohmann::json layouts = nlohmann::json::array();
  for (const LayoutEstimate& estimate : plan.layouts) layouts.push_back(layout_json(estimate));
  return {{"recipe", request.recipe_path},
          {"model", model_json(base)},
          {"seq_len", base.train.seq_len},
          {"batch_size", base.train.batch_size},
          {"tokens_per_step", base.train.tokens_per_step()},
          {"gpus", request.gpus},
          {"assumptions", to_json(request.assumptions)},
          {"enumeration",
           {{"with_cp_and_recompute", request.with_cp_and_recompute},
            {"refused", plan.refused},
            {"first_refusal", plan.first_refusal}}},
          {"layouts", layouts}};
}

}  // namespace kiln::plan
