#include "trainer/metrics/metrics_log.hpp"

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "trainer/core/atomic_file.hpp"
#include "trainer/core/error.hpp"

namespace kiln::metrics {

namespace fs = std::filesystem;

namespace {

nlohmann::json finite_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

// The lines of an existing log worth keeping on resume, each with its newline.
std::string kept_lines(const fs::path& path, std::int64_t resume_step) {
  std::ifstream in(path, std::ios::binary);
  std::string kept, line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no newline after it: a line torn by a crash
    const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_discarded() || !record.is_object()) continue;
    const auto step = record.find("step");
    if (step != record.end() && step->is_number() && step->get<std::int64_t>() > resume_step) continue;
    kept += line;
    kept += '\n';
  }
  return kept;
}

void ensure_parent(const fs::path& path) {
  if (path.has_parent_path()) {
    std::error_code error;
    fs::create_directories(path.parent_path(), error);
    if (error) fail("metrics: cannot create '{}': {}", path.parent_path().string(), error.message());
  }
}

}  // namespace

nlohmann::json step_record(const StepMetrics& m) {
  nlohmann::json record = {{"step", m.step},
                           {"loss", finite_or_null(m.loss)},
                           {"lr", finite_or_null(m.lr)},
                           {"grad_norm", finite_or_null(m.grad_norm)},
                           {"tokens_per_s", finite_or_null(m.tokens_per_second)},
                           {"tokens", m.tokens_seen},
                           {"elapsed_s", finite_or_null(m.elapsed_seconds)},
                           {"step_s", finite_or_null(m.step_seconds)}};
  if (m.mfu) record["mfu"] = finite_or_null(*m.mfu);
  if (m.memory_peak_bytes) record["memory_peak_bytes"] = *m.memory_peak_bytes;
  if (m.precision) record["precision"] = *m.precision;
  return record;
}

nlohmann::json eval_record(std::int64_t step, double val_loss) {
  return {{"step", step}, {"val_loss", finite_or_null(val_loss)}};
}

MetricsLog::MetricsLog(fs::path path, std::ios::openmode mode) : path_(std::move(path)) {
  ensure_parent(path_);
  out_.open(path_, mode);
  if (!out_) fail("metrics: cannot open '{}' for writing", path_.string());
}

MetricsLog MetricsLog::create(const fs::path& path) {
  return MetricsLog(path, std::ios::out | std::ios::trunc);
}

MetricsLog MetricsLog::resume(const fs::path& path, std::int64_t resume_step) {
  if (fs::exists(path)) {
    write_file_atomically(path, kept_lines(path, resume_step));
  }
  return MetricsLog(path, std::ios::out | std::ios::app);
}

void MetricsLog::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
  if (!out_) fail("metrics: write to '{}' failed (disk full?)", path_.string());
}

}  // namespace kiln::metrics
