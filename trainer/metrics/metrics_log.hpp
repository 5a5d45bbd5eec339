#pragma once
// metrics.jsonl: one JSON object per line, flushed as written, for plotting and for tools that
// tail a running job (DESIGN.md §10). Step records and eval records share the file:
//   {"step":120,"loss":3.2141,"lr":0.0003,"grad_norm":0.812,"tokens_per_s":41200.0,
//    "tokens":1966080,"elapsed_s":48.1,"step_s":0.4,"mfu":0.123,
//    "memory_peak_bytes":{"activations":5242880,...,"total":10276864}}
//   {"step":200,"val_loss":3.05}
// `step` counts optimizer steps completed, the same number a checkpoint is saved under. A NaN or
// infinite value is written as null (JSON has no NaN), so a diverged run still parses.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace kiln::metrics {

struct StepMetrics {
  std::int64_t step = 0;
  double loss = 0.0;
  double lr = 0.0;
  double grad_norm = 0.0;
  double tokens_per_second = 0.0;
  std::int64_t tokens_seen = 0;
  double elapsed_seconds = 0.0;  // since the run (or the resumed run) started
  double step_seconds = 0.0;
  std::optional<double> mfu;     // fraction of peak; absent when the peak is unknown
  // Peak bytes per memory category so far (see memory_report.hpp); absent when not given.
  std::optional<nlohmann::json> memory_peak_bytes;
  // The storage precision that made these numbers ("fp32", "bf16"); absent when not given.
  std::optional<std::string> precision;
};

nlohmann::json step_record(const StepMetrics& metrics);
nlohmann::json eval_record(std::int64_t step, double val_loss);

class MetricsLog {
 public:
  // A new run: starts the file empty (creating its directory).
  static MetricsLog create(const std::filesystem::path& path);
  // A run resumed from a checkpoint of `resume_step`: keeps the records of steps up to it and
  // drops later ones (the resumed run redoes those steps, so they would appear twice) along
  // with a torn last line; then appends.
  static MetricsLog resume(const std::filesystem::path& path, std::int64_t resume_step);

  // Writes record as one line and flushes, so a crash loses at most the line being written.
  void write(const nlohmann::json& record);
  void write_step(const StepMetrics& metrics) { write(step_record(metrics)); }
  void write_eval(std::int64_t step, double val_loss) { write(eval_record(step, val_loss)); }

  const std::filesystem::path& path() const { return path_; }

 private:
  MetricsLog(std::filesystem::path path, std::ios::openmode mode);

  std::filesystem::path path_;
  std::ofstream out_;
};

}  // namespace kiln::metrics
