#include "data/curate/curate_report.hpp"

#include <fmt/format.h>

#include "trainer/core/error.hpp"

namespace kiln::curate {

namespace {
constexpr std::array<std::string_view, kStageCount> kStageNames = {
    "read", "normalize", "gopher_quality", "gopher_repetition", "c4", "fineweb", "exact_dedup", "near_dedup",
    "line_dedup", "decontamination", "pii", "model_scoring"};

std::string human_bytes(std::uint64_t bytes) {
  const auto value = static_cast<double>(bytes);
  if (value >= 1e9) return fmt::format("{:.2f} GB", value / 1e9);
  if (value >= 1e6) return fmt::format("{:.2f} MB", value / 1e6);
  if (value >= 1e3) return fmt::format("{:.1f} kB", value / 1e3);
  return fmt::format("{} B", bytes);
}
}  // namespace

std::string_view stage_name(Stage stage) { return kStageNames[static_cast<std::size_t>(stage)]; }

Stage stage_from_name(std::string_view name) {
  for (std::size_t i = 0; i < kStageCount; ++i) {
    if (kStageNames[i] == name) return static_cast<Stage>(i);
  }
  fail("unknown curation stage '{}'", name);
}

void CurateReport::pass(Stage stage, std::size_t bytes_in, std::size_t bytes_out) {
  auto& stats = (*this)[stage];
  ++stats.docs_in;
  ++stats.docs_out;
  stats.bytes_in += bytes_in;
  stats.bytes_out += bytes_out;
}

void CurateReport::drop(Stage stage, std::size_t bytes_in, std::string_view reason) {
  auto& stats = (*this)[stage];
  ++stats.docs_in;
  stats.bytes_in += bytes_in;
  ++stats.dropped[std::string(reason)];
}

void CurateReport::count(Stage stage, std::string_view counter, std::uint64_t amount) {
  (*this)[stage].counters[std::string(counter)] += amount;
}

void CurateReport::merge(const CurateReport& other) {
  for (std::size_t i = 0; i < kStageCount; ++i) {
    auto& mine = stages_[i];
    const auto& theirs = other.stages_[i];
    mine.enabled = mine.enabled || theirs.enabled;
    mine.docs_in += theirs.docs_in;
    mine.docs_out += theirs.docs_out;
    mine.bytes_in += theirs.bytes_in;
    mine.bytes_out += theirs.bytes_out;
    for (const auto& [reason, count] : theirs.dropped) mine.dropped[reason] += count;
    for (const auto& [name, count] : theirs.counters) mine.counters[name] += count;
  }
}

nlohmann::json CurateReport::stages_json() const {
  nlohmann::json stages = nlohmann::json::array();
  for (std::size_t i = 0; i < kStageCount; ++i) {
    const auto& s = stages_[i];
    nlohmann::json stage = {{"name", kStageNames[i]}, {"enabled", s.enabled}, {"docs_in", s.docs_in},
                            {"docs_out", s.docs_out}, {"bytes_in", s.bytes_in}, {"bytes_out", s.bytes_out},
                            {"dropped", s.dropped}, {"counters", s.counters}};
    stages.push_back(std::move(stage));
  }
  return stages;
}

CurateReport CurateReport::from_stages_json(const nlohmann::json& stages) {
  CurateReport report;
  for (const auto& stage : stages) {
    auto& s = report[stage_from_name(stage.at("name").get<std::string>())];
    s.enabled = stage.at("enabled").get<bool>();
    s.docs_in = stage.at("docs_in").get<std::uint64_t>();
    s.docs_out = stage.at("docs_out").get<std::uint64_t>();
    s.bytes_in = stage.at("bytes_in").get<std::uint64_t>();
    s.bytes_out = stage.at("bytes_out").get<std::uint64_t>();
    s.dropped = stage.at("dropped").get<std::map<std::string, std::uint64_t>>();
    s.counters = stage.at("counters").get<std::map<std::string, std::uint64_t>>();
  }
  return report;
}

std::string CurateReport::table() const {
  std::string out = fmt::format("{:<28} {:>10} {:>10} {:>9} {:>11} {:>11}\n", "stage / drop reason", "docs in",
                                "docs out", "dropped", "bytes in", "bytes out");
  for (std::size_t i = 0; i < kStageCount; ++i) {
    const auto& s = stages_[i];
    if (!s.enabled) continue;
    out += fmt::format("{:<28} {:>10} {:>10} {:>9} {:>11} {:>11}\n", kStageNames[i], s.docs_in, s.docs_out,
                       s.docs_in - s.docs_out, human_bytes(s.bytes_in), human_bytes(s.bytes_out));
    for (const auto& [reason, count] : s.dropped) out += fmt::format("  {:<26} {:>32}\n", reason, count);
    for (const auto& [name, count] : s.counters) out += fmt::format("  ({}) {:>{}}\n", name, count, 58 - name.size());
  }
  return out;
}

}  // namespace kiln::curate
