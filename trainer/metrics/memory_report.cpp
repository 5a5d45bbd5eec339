#include "trainer/metrics/memory_report.hpp"

#include <fmt/format.h>

namespace kiln::metrics {

MemoryPeaks memory_peaks(const memory::MemorySnapshot& snapshot) {
  MemoryPeaks peaks;
  for (const memory::MemoryCategory category : memory::kMemoryCategories)
    peaks.categories[static_cast<std::size_t>(category)] = snapshot[category].peak;
  peaks.total = snapshot.total.peak;
  return peaks;
}

std::string format_bytes(std::uint64_t bytes) {
  constexpr double kKiB = 1024.0, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
  const auto value = static_cast<double>(bytes);
  if (value >= kGiB) return fmt::format("{:.2f} GiB", value / kGiB);
  if (value >= kMiB) return fmt::format("{:.1f} MiB", value / kMiB);
  if (value >= kKiB) return fmt::format("{:.1f} KiB", value / kKiB);
  return fmt::format("{} B", bytes);
}

std::string memory_banner(const MemoryPeaks& peaks, int ranks) {
  std::string line = ranks > 1 ? fmt::format("memory peak per rank (max over {} ranks):", ranks) : "memory peak:";
  const char* separator = " ";
  for (const memory::MemoryCategory category : memory::kMemoryCategories) {
    line += fmt::format("{}{} {}", separator, memory::memory_category_name(category), format_bytes(peaks[category]));
    separator = ", ";
  }
  return line + fmt::format("; total {}", format_bytes(peaks.total));
}

nlohmann::json memory_record(const MemoryPeaks& peaks) {
  nlohmann::json record = nlohmann::json::object();
  for (const memory::MemoryCategory category : memory::kMemoryCategories)
    record[std::string(memory::memory_category_name(category))] = peaks[category];
  record["total"] = peaks.total;
  return record;
}

}  // namespace kiln::metrics
