// `kiln plan RECIPE --gpus N [--gpu-memory GiB] [--set key.path=value ...] [--json]`
//                   [--layout dp,tp,pp,zero[,cp[,recompute]]] [--top K] [--with-cp-and-recompute]
//                   [--gpus-per-node G] [--peak-tflops T] [--fp32-peak-tflops T] [--efficiency E]
//                   [--nvlink-gbps B] [--ib-gbps B]
#include <fmt/format.h>

#include <charconv>
#include <memory>
#include <optional>

#include "data/tokenizer/tokenizer.hpp"
#include "trainer/cli/command.hpp"
#include "trainer/config/recipe.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"
#include "trainer/plan/plan_report.hpp"

namespace kiln::cli {

namespace {

constexpr int kNotGiven = -1;

struct PlanFlags {
  std::string recipe;
  std::vector<std::string> overrides;
  int gpus = kNotGiven;
  std::string layout;
  std::size_t top = 20;
  bool json = false;
  bool with_cp_and_recompute = false;
  bool all_micro_batches = false;
  plan::PlanAssumptions assumptions;
};

// The recipe as kiln train would read it, its vocabulary resolved from the tokenizer when the
// recipe leaves it to the tokenizer (as the trainer does).
config::Recipe load_plan_recipe(const PlanFlags& flags) {
  config::Recipe recipe = config::load_recipe(flags.recipe, flags.overrides);
  if (recipe.model.vocab_size != 0) return recipe;
  try {
    const auto tokenizer = tok::Tokenizer::load(recipe.data.tokenizer);
    config::resolve_vocab_size(recipe, static_cast<std::int64_t>(tokenizer.vocab_size()), recipe.data.tokenizer);
  } catch (const Error& error) {
    fail(
        "data.tokenizer: model.vocab_size is auto, so plan reads it from the tokenizer: {}. Fix: point "
        "data.tokenizer at it, or --set model.vocab_size=N",
        error.what());
  }
  return recipe;
}

plan::LayoutChecker layout_checker(const PlanFlags& flags, const config::Recipe& base) {
  return plan::LayoutChecker({read_text_file(flags.recipe, "recipe"), flags.recipe, flags.overrides},
                             base.model.vocab_size);
}

int layout_number(std::string_view field, std::string_view text) {
  int value = 0;
  const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (error != std::errc{} || end != field.data() + field.size() || value < 0)
    fail("--layout {}: '{}' is not a whole number; expected dp,tp,pp,zero[,cp[,recompute]], e.g. 2,2,1,1", text, field);
  return value;
}

// "dp,tp,pp,zero[,cp[,recompute]]"; sequence parallelism and the micro-batch size are the recipe's.
plan::PlanLayout parse_layout(std::string_view text, const config::Recipe& recipe) {
  std::vector<std::string_view> fields;
  for (std::size_t start = 0;;) {
    const auto comma = text.find(',', start);
    fields.push_back(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (fields.size() < 4 || fields.size() > 6)
    fail("--layout {}: expected dp,tp,pp,zero[,cp[,recompute]] (4 to 6 fields), e.g. 2,2,1,1", text);
  plan::PlanLayout layout;
  layout.dp = layout_number(fields[0], text);
  layout.tp = layout_number(fields[1], text);
  layout.pp = layout_number(fields[2], text);
  layout.zero = layout_number(fields[3], text);
  if (fields.size() > 4) layout.cp = layout_number(fields[4], text);
  if (fields.size() > 5) layout.recompute = plan::recompute_from_name(fields[5]);
  layout.sequence_parallel = recipe.parallel.sequence_parallel;
  layout.micro_batch_size = recipe.train.micro_batch_size;
  return layout;
}

plan::Plan plan_one_layout(const plan::LayoutChecker& checker, const PlanFlags& flags, const config::Recipe& base) {
  plan::PlanLayout layout = parse_layout(flags.layout, base);
  if (flags.gpus != kNotGiven && flags.gpus != layout.gpus())
    fail("--gpus: {} GPUs, but --layout {} takes dp x tp x pp x cp = {}", flags.gpus, flags.layout, layout.gpus());
  std::optional<plan::LayoutChecker::Checked> checked;
  try {
    checked = checker.check(layout);
  } catch (const Error& refusal) {
    fail("--layout {}: kiln train would refuse this layout: {}", flags.layout, refusal.what());
  }
  plan::Plan plan;
  plan.layouts.push_back(plan::estimate_layout(checked->recipe, checked->layout, flags.assumptions));
  return plan;
}

void run_plan(const PlanFlags& flags) {
  if (flags.layout.empty() && flags.gpus == kNotGiven)
    fail("kiln plan needs --gpus N (the GPUs to lay the model out on), or --layout dp,tp,pp,zero");
  if (flags.gpus != kNotGiven && flags.gpus < 1)
    fail("--gpus: {} is not a number of GPUs (expected 1 or more)", flags.gpus);
  flags.assumptions.check();
  const config::Recipe base = load_plan_recipe(flags);
  const plan::LayoutChecker checker = layout_checker(flags, base);
  plan::PlanRequest request{flags.recipe, flags.gpus, flags.with_cp_and_recompute, flags.assumptions,
                            flags.all_micro_batches};
  plan::Plan plan;
  if (!flags.layout.empty()) {
    plan = plan_one_layout(checker, flags, base);
    request.gpus = plan.layouts.front().layout.gpus();
  } else {
    const plan::PlanSpace space{flags.gpus, flags.assumptions.gpus_per_node, flags.with_cp_and_recompute};
    plan = plan::plan_layouts(checker, base, space, flags.assumptions);
  }
  if (flags.json) {
    fmt::print("{}\n", plan::plan_json(plan, base, request).dump(2));
  } else {
    fmt::print("{}", plan::plan_table(plan, base, request, flags.top));
  }
}

void add_assumption_options(CLI::App* command, plan::PlanAssumptions& a) {
  command->add_option("--gpu-memory", a.gpu_memory_gib, "Memory of one GPU, GiB")->capture_default_str();
  command->add_option("--gpus-per-node", a.gpus_per_node, "GPUs per node (tp stays inside one)")->capture_default_str();
  command->add_option("--peak-tflops", a.peak_bf16_tflops, "Dense bf16 peak of one GPU, TFLOP/s")
      ->capture_default_str();
  command->add_option("--fp32-peak-tflops", a.peak_fp32_tflops, "fp32 peak of one GPU, TFLOP/s")->capture_default_str();
  command->add_option("--efficiency", a.efficiency, "Fraction of the peak the model's FLOPs reach")
      ->capture_default_str();
  command->add_option("--nvlink-gbps", a.nvlink_gbps, "GB/s per GPU and direction inside a node")
      ->capture_default_str();
  command->add_option("--ib-gbps", a.ib_gbps, "GB/s per GPU and direction between nodes")->capture_default_str();
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto flags = std::make_shared<PlanFlags>();
  auto* command = app.add_subcommand(
      "plan",
      "The parallel layouts of a recipe's model on N GPUs: memory per rank, traffic and step time, fastest first");
  command->add_option("recipe", flags->recipe, "Recipe YAML (see recipes/)")->required();
  command->add_option("--gpus", flags->gpus, "GPUs to lay the model out on");
  command->add_option(
      "--set", flags->overrides,
      "Override a recipe field: --set train.seq_len=4096 (repeatable; the layout keys are what plan varies)");
  command->add_option("--layout", flags->layout,
                      "Estimate this layout only: dp,tp,pp,zero[,cp[,recompute]] (micro-batch and sequence "
                      "parallelism from the recipe)");
  command->add_option("--top", flags->top, "Rows of the table (0: all)")->capture_default_str();
  command->add_flag("--json", flags->json, "Print the plan as JSON (every layout and micro-batch size)");
  command->add_flag("--all-micro-batches", flags->all_micro_batches,
                    "Table: a row for every micro-batch size, not only each layout's best");
  command->add_flag("--with-cp-and-recompute", flags->with_cp_and_recompute,
                    "Also enumerate context parallelism (parallel.cp) and activation recomputation (train.recompute)");
  add_assumption_options(command, flags->assumptions);
  command->callback([flags] { run_plan(*flags); });
}

}  // namespace kiln::cli
