// `kiln train RECIPE [--set key.path=value ...] [--run-dir DIR]`
#include <fmt/format.h>

#include <memory>

#include "parallel/mpi_environment.hpp"
#include "trainer/cli/command.hpp"
#include "trainer/config/recipe.hpp"
#include "trainer/train/trainer.hpp"

namespace kiln::cli {

namespace {

struct TrainFlags {
  std::string recipe;
  std::vector<std::string> overrides;
  std::string run_dir;
  std::string traffic_report;
};

void run_train(const TrainFlags& flags) {
  std::vector<std::string> overrides = flags.overrides;
  if (!flags.run_dir.empty()) overrides.push_back("run.dir=" + flags.run_dir);
  train::Trainer trainer(config::load_recipe(flags.recipe, overrides));
  const auto outcome = trainer.run();
  if (!flags.traffic_report.empty()) trainer.write_traffic_report(flags.traffic_report);
  if (!parallel::MpiEnvironment::instance().is_root()) return;
  if (outcome.last_checkpoint.empty()) {
    fmt::print("nothing to do: the run is already at step {} of train.steps\n", outcome.steps_done);
    return;
  }
  fmt::print("done: {} steps, last loss {:.4f}, checkpoint {}\n", outcome.steps_done, outcome.last_loss,
             outcome.last_checkpoint.string());
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto flags = std::make_shared<TrainFlags>();
  auto* command = app.add_subcommand(
      "train", "Train a model from a YAML recipe; re-running the same command resumes from the latest checkpoint");
  command->add_option("recipe", flags->recipe, "Recipe YAML (see recipes/)")->required();
  command->add_option("--set", flags->overrides, "Override a recipe field: --set optim.lr=3e-4 (repeatable)");
  command->add_option("--run-dir", flags->run_dir, "Run directory (default: run.dir of the recipe)");
  command->add_option("--traffic-report", flags->traffic_report,
                      "After training, each rank writes PATH.rank<R>.json: bytes it sent per step, per group");
  command->callback([flags] { run_train(*flags); });
}

}  // namespace kiln::cli
