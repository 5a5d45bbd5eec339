#pragma once
// What curation did, stage by stage: documents and bytes in and out, every drop reason with
// its count, and stage counters (lines removed, e-mails redacted, ...). Written as
// DIR/report.json and printed as a table. Reports of threads and ranks add up exactly.
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace kiln::curate {

enum class Stage : std::uint8_t {
  Read, Normalize, GopherQuality, GopherRepetition, C4, FineWeb, ExactDedup, NearDedup, LineDedup,
  Decontamination, Pii, ModelScoring
};
inline constexpr std::size_t kStageCount = 12;
std::string_view stage_name(Stage stage);
Stage stage_from_name(std::string_view name);  // throws kiln::Error for an unknown name

struct StageStats {
  bool enabled = false;
  std::uint64_t docs_in = 0, docs_out = 0, bytes_in = 0, bytes_out = 0;
  std::map<std::string, std::uint64_t> dropped;   // reason -> documents
  std::map<std::string, std::uint64_t> counters;  // e.g. "emails_redacted"
};

class CurateReport {
 public:
  StageStats& operator[](Stage stage) { return stages_[static_cast<std::size_t>(stage)]; }
  const StageStats& operator[](Stage stage) const { return stages_[static_cast<std::size_t>(stage)]; }

  // A document entering a stage with `bytes_in` and leaving it with `bytes_out`, or dropped
  // with `reason` (non-empty).
  void pass(Stage stage, std::size_t bytes_in, std::size_t bytes_out);
  void drop(Stage stage, std::size_t bytes_in, std::string_view reason);
  void count(Stage stage, std::string_view counter, std::uint64_t amount = 1);

  void merge(const CurateReport& other);
  nlohmann::json stages_json() const;
  static CurateReport from_stages_json(const nlohmann::json& stages);
  // Fixed-width table: one row per enabled stage, then one indented row per drop reason.
  std::string table() const;

 private:
  std::array<StageStats, kStageCount> stages_;
};

}  // namespace kiln::curate
