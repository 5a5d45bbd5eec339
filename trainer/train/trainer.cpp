#include "trainer/train/trainer.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <chrono>
#include <fstream>
#include <iostream>

#include "data/dataset/token_dataset.hpp"
#include "data/loader/token_loader.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "trainer/checkpoint/checkpoint_finder.hpp"
#include "trainer/checkpoint/model_state.hpp"
#include "trainer/config/parallel_layout.hpp"
#include "trainer/core/checksum.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/stop_signal.hpp"
#include "trainer/core/version.hpp"
#include "trainer/metrics/metrics_log.hpp"
#include "trainer/metrics/model_flops.hpp"
#include "trainer/metrics/progress_line.hpp"
#include "trainer/metrics/throughput.hpp"
#include "trainer/optim/adamw.hpp"
#include "trainer/optim/lr_schedule.hpp"
#include "trainer/train/evaluate.hpp"
#include "trainer/train/micro_batch.hpp"

namespace kiln::train {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Consecutive steps with non-finite gradients after which the run is declared diverged.
constexpr int kMaxSkippedStepsInARow = 5;

std::shared_ptr<const data::TokenDataset> open_split(const std::string& path, const std::string& what,
                                                     const tok::Tokenizer& tokenizer, const std::string& tokenizer_path) {
  auto dataset = std::make_shared<const data::TokenDataset>(data::TokenDataset::open(path));
  const std::string expected = to_hex(tokenizer.content_hash());
  if (dataset->attributes().tokenizer_hash != expected) {
    fail("{} dataset '{}' was tokenized with another tokenizer (hash {}) than data.tokenizer '{}' (hash {}); "
         "prepare the data again with this tokenizer or point data.tokenizer at the one it was made with",
         what, path, dataset->attributes().tokenizer_hash, tokenizer_path, expected);
  }
  return dataset;
}

optim::LrSchedule schedule_of(const config::Recipe& recipe) {
  optim::LrScheduleConfig schedule;
  schedule.kind = recipe.optim.schedule;
  schedule.lr = recipe.optim.lr;
  schedule.min_lr = recipe.optim.min_lr;
  schedule.warmup_steps = recipe.optim.warmup_steps;
  schedule.decay_steps = recipe.optim.decay_steps;
  schedule.total_steps = recipe.train.steps;
  return optim::LrSchedule(schedule);
}

optim::AdamWConfig adamw_of(const config::OptimConfig& optim) {
  return {optim.beta1, optim.beta2, optim.eps, optim.weight_decay};
}

double peak_flops_of(const config::Recipe& recipe) {
  if (recipe.log.peak_tflops > 0) return recipe.log.peak_tflops * 1e12;
  return metrics::estimate_cpu_peak_flops(omp_get_max_threads());
}

}  // namespace

struct Trainer::State {
  config::Recipe recipe;
  fs::path run_dir;
  tok::Tokenizer tokenizer;
  std::shared_ptr<const data::TokenDataset> train_data;
  std::shared_ptr<const data::TokenDataset> val_data;
  std::unique_ptr<data::TokenLoader> loader;
  std::unique_ptr<model::Transformer> model;
  std::unique_ptr<optim::AdamW> optimizer;
  optim::LrSchedule schedule;
  config::ParallelLayout layout;
  std::int64_t step = 0;
  std::int64_t tokens_seen = 0;
  std::int64_t skipped_steps = 0;
  double flops_per_token = 0;
  double peak_flops = 0;

  State(config::Recipe r, tok::Tokenizer t, optim::LrSchedule s)
      : recipe(std::move(r)), tokenizer(std::move(t)), schedule(std::move(s)) {}

  void resume_or_initialise();
  void load_weights_from(const fs::path& checkpoint);
  double train_step();
  double validation_loss();
  fs::path save_checkpoint();
  void print_banner() const;
};

// ---- setup ----------------------------------------------------------------------------------

Trainer::Trainer(config::Recipe recipe) {
  if (recipe.train.threads > 0) omp_set_num_threads(recipe.train.threads);
  auto tokenizer = tok::Tokenizer::load(recipe.data.tokenizer);
  config::resolve_vocab_size(recipe, static_cast<std::int64_t>(tokenizer.vocab_size()), recipe.data.tokenizer);
  auto schedule = schedule_of(recipe);
  state_ = std::make_unique<State>(std::move(recipe), std::move(tokenizer), std::move(schedule));
  auto& s = *state_;
  s.layout = config::resolve_layout(s.recipe, 1);
  s.run_dir = s.recipe.run.dir;
  s.train_data = open_split(s.recipe.data.train, "train", s.tokenizer, s.recipe.data.tokenizer);
  if (!s.recipe.data.val.empty()) s.val_data = open_split(s.recipe.data.val, "val", s.tokenizer, s.recipe.data.tokenizer);

  data::TokenLoaderOptions loader;
  loader.seq_len = static_cast<std::uint64_t>(s.recipe.train.seq_len);
  loader.global_batch = static_cast<std::uint64_t>(s.recipe.train.batch_size);
  loader.seed = static_cast<std::uint64_t>(s.recipe.train.seed);
  loader.packed = s.recipe.data.packed;
  s.loader = std::make_unique<data::TokenLoader>(s.train_data, loader);

  const auto model_config = model::from_recipe(s.recipe.model, s.layout.tp);
  s.model = std::make_unique<model::Transformer>(model_config);
  s.optimizer = std::make_unique<optim::AdamW>(s.model->parameters(), adamw_of(s.recipe.optim));
  s.flops_per_token = model::flops_per_token(model_config, s.recipe.train.seq_len);
  s.peak_flops = peak_flops_of(s.recipe);
  s.resume_or_initialise();
}

Trainer::~Trainer() = default;

void Trainer::State::load_weights_from(const fs::path& checkpoint) {
  const auto found = checkpoint::resolve_checkpoint(checkpoint, std::cerr);
  const checkpoint::CheckpointReader reader(found.dir);
  checkpoint::read_parameters(reader, model->parameters());
  fmt::print("initialised weights from {}\n", found.dir.string());
}

void Trainer::State::resume_or_initialise() {
  fs::create_directories(run_dir);
  const auto found = recipe.run.resume ? checkpoint::find_latest_valid(recipe.checkpoints_dir(), std::cerr)
                                       : std::optional<checkpoint::FoundCheckpoint>{};
  if (found) {
    const checkpoint::CheckpointReader reader(found->dir);
    checkpoint::read_parameters(reader, model->parameters());
    checkpoint::read_optimizer(reader, model->parameters(), *optimizer);
    const auto& meta = reader.meta();
    step = meta.step;
    tokens_seen = meta.tokens_seen;
    optimizer->set_steps_taken(meta.extra.value("optimizer_steps", meta.step));
    skipped_steps = meta.extra.value("skipped_steps", std::int64_t{0});
    loader->restore(data::LoaderState::from_json(meta.loader));
    fmt::print("resuming from {} (step {}, {} tokens seen)\n", found->dir.string(), step, tokens_seen);
    return;
  }
  if (!recipe.model.init_from.empty()) {
    load_weights_from(recipe.model.init_from);
  } else {
    model->init_weights(static_cast<std::uint64_t>(recipe.train.seed));
  }
}

void Trainer::State::print_banner() const {
  const auto& m = model->config();
  fmt::print("kiln {} | {} model: {} parameters, {} layers, d_model {}, {} heads ({} kv), vocab {} (padded {})\n",
             kVersion, model::family_name(m.family), metrics::format_count(static_cast<double>(model::parameter_count(m))),
             m.n_layers, m.d_model, m.n_heads, m.n_kv_heads, m.vocab_size, m.padded_vocab());
  fmt::print("layout dp={} tp={} pp={} (one process, {} threads) | {} tokens/step = {} x {} | micro-batch {}\n",
             layout.dp, layout.tp, layout.pp, omp_get_max_threads(), recipe.train.tokens_per_step(),
             recipe.train.batch_size, recipe.train.seq_len, recipe.train.micro_batch_size);
  fmt::print("train data {} ({} windows) | run dir {}\n", recipe.data.train, loader->num_windows(), run_dir.string());
}

// ---- one step -------------------------------------------------------------------------------

double Trainer::State::train_step() {
  const data::Batch batch = loader->next_batch();
  const auto micro_rows = static_cast<std::uint64_t>(recipe.train.micro_batch_size);
  std::vector<MicroBatch> micro_batches;
  std::int64_t counted = 0;
  for (std::uint64_t first = 0; first < batch.rows; first += micro_rows) {
    micro_batches.push_back(slice_micro_batch(batch, first, std::min(micro_rows, batch.rows - first)));
    counted += micro_batches.back().counted_tokens();
  }
  model->zero_grads();
  const double grad_scale = counted > 0 ? 1.0 / static_cast<double>(counted) : 0.0;
  double loss_sum = 0.0;
  for (const auto& micro : micro_batches) {
    loss_sum += model->forward(micro.view()).sum;
    model->backward(grad_scale);
  }
  return counted > 0 ? loss_sum / static_cast<double>(counted) : 0.0;
}

double Trainer::State::validation_loss() {
  EvalOptions options;
  options.seq_len = recipe.train.seq_len;
  options.rows = recipe.train.micro_batch_size;
  options.batches = recipe.eval.batches * (recipe.train.batch_size / recipe.train.micro_batch_size);
  options.packed = recipe.data.packed;
  return evaluate(*model, val_data, options).loss;
}

fs::path Trainer::State::save_checkpoint() {
  checkpoint::CheckpointWriter writer(recipe.checkpoints_dir(), step);
  checkpoint::write_parameters(writer, model->parameters());
  checkpoint::write_optimizer(writer, model->parameters(), *optimizer);
  checkpoint::CheckpointMeta meta;
  meta.step = step;
  meta.tokens_seen = tokens_seen;
  meta.recipe = config::recipe_to_json(recipe);
  meta.layout = layout;
  meta.loader = loader->state().to_json();
  meta.rng = {{"seed", recipe.train.seed}};
  meta.schedule = schedule.to_json();
  meta.extra = {{"optimizer_steps", optimizer->steps_taken()}, {"skipped_steps", skipped_steps}};
  meta.created_by = fmt::format("kiln {}", kVersion);
  writer.set_meta(std::move(meta));
  // The checkpoint carries its tokenizer, so eval and generate need nothing else.
  fs::copy_file(recipe.data.tokenizer, writer.temporary_dir() / "tokenizer.json");
  writer.finish_rank_file();
  return writer.commit(recipe.checkpoint.keep_last);
}

// ---- the loop -------------------------------------------------------------------------------

TrainOutcome Trainer::run() {
  auto& s = *state_;
  s.print_banner();
  {
    std::ofstream(s.run_dir / "recipe.yaml") << config::recipe_to_yaml(s.recipe);
  }
  const auto run_tokenizer = s.run_dir / "tokenizer.json";
  std::error_code not_there;
  if (!fs::equivalent(s.recipe.data.tokenizer, run_tokenizer, not_there)) {
    fs::copy_file(s.recipe.data.tokenizer, run_tokenizer, fs::copy_options::overwrite_existing);
  }
  auto log = s.step > 0 ? metrics::MetricsLog::resume(s.run_dir / "metrics.jsonl", s.step)
                        : metrics::MetricsLog::create(s.run_dir / "metrics.jsonl");
  const StopSignalHandler stop_handler;
  metrics::ThroughputMeter throughput;
  const auto run_start = Clock::now();
  TrainOutcome outcome;
  int skipped_in_a_row = 0;
  const auto steps = s.recipe.train.steps;
  const auto tokens_per_step = s.recipe.train.tokens_per_step();

  while (s.step < steps && !stop_requested()) {
    const auto step_start = Clock::now();
    const double lr = s.schedule.lr_at(s.step);
    const double loss = s.train_step();
    const double norm = optim::AdamW::gradient_norm(s.model->parameters());
    const bool applied = s.optimizer->step(s.model->parameters(), lr, optim::AdamW::clip_factor(norm, s.recipe.optim.grad_clip));
    if (!applied) {
      ++s.skipped_steps;
      fmt::print(stderr, "kiln: warning: step {} has non-finite gradients (loss {}); the update was skipped\n",
                 s.step + 1, loss);
      if (++skipped_in_a_row >= kMaxSkippedStepsInARow) {
        fail("training diverged: {} steps in a row had non-finite gradients (last at step {}); lower optim.lr or "
             "resume from an earlier checkpoint", skipped_in_a_row, s.step + 1);
      }
    } else {
      skipped_in_a_row = 0;
    }
    ++s.step;
    s.tokens_seen += tokens_per_step;
    const double seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
    throughput.record(tokens_per_step, seconds);
    outcome.last_loss = loss;

    if (s.step % s.recipe.log.every_steps == 0 || s.step == steps) {
      metrics::StepMetrics record;
      record.step = s.step;
      record.loss = loss;
      record.lr = lr;
      record.grad_norm = norm;
      record.tokens_per_second = throughput.tokens_per_second();
      record.tokens_seen = s.tokens_seen;
      record.elapsed_seconds = std::chrono::duration<double>(Clock::now() - run_start).count();
      record.step_seconds = seconds;
      if (s.peak_flops > 0) {
        record.mfu = metrics::model_flops_utilisation(s.flops_per_token, record.tokens_per_second, s.peak_flops);
      }
      log.write_step(record);
      metrics::ProgressLine line;
      line.step = s.step;
      line.total_steps = steps;
      line.loss = loss;
      line.lr = lr;
      line.grad_norm = norm;
      line.tokens_per_second = record.tokens_per_second;
      line.mfu = record.mfu;
      line.peak_flops = s.peak_flops;
      line.eta_seconds = throughput.eta_seconds(steps - s.step);
      fmt::print("{}\n", metrics::format_progress_line(line));
      std::fflush(stdout);
    }
    const bool last = s.step == steps;
    if (s.val_data && ((s.recipe.eval.every_steps > 0 && s.step % s.recipe.eval.every_steps == 0) || last)) {
      const double val_loss = s.validation_loss();
      log.write_eval(s.step, val_loss);
      fmt::print("step {} | val_loss {:.4f}\n", s.step, val_loss);
    }
    const bool periodic = s.recipe.checkpoint.every_steps > 0 && s.step % s.recipe.checkpoint.every_steps == 0;
    if (periodic || last || stop_requested()) {
      outcome.last_checkpoint = s.save_checkpoint();
      fmt::print("saved checkpoint {}\n", outcome.last_checkpoint.string());
    }
  }
  outcome.steps_done = s.step;
  outcome.stopped_by_signal = stop_requested();
  if (outcome.stopped_by_signal) {
    fmt::print("stopped by signal {} after step {}; re-run the same command to resume\n", stop_signal_number(), s.step);
  }
  return outcome;
}

}  // namespace kiln::train
