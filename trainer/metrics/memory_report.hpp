#pragma once
// The peak-memory report (DESIGN.md §4, §10): peak bytes per memory category and in total, as
// the memory ledger counted them, for the training banner and metrics.jsonl:
//   banner  "memory peak per rank (max over 2 ranks): parameters 1.2 MiB, gradients ...; total 9.8 MiB"
//   record  "memory_peak_bytes":{"activations":5242880,...,"total":10276864}
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "kernels/memory/memory_category.hpp"
#include "kernels/memory/memory_ledger.hpp"

namespace kiln::metrics {

struct MemoryPeaks {
  std::array<std::uint64_t, memory::kMemoryCategories.size()> categories{};
  std::uint64_t total = 0;  // the peak of the sum (at most the sum of the peaks)

  std::uint64_t operator[](memory::MemoryCategory category) const {
    return categories[static_cast<std::size_t>(category)];
  }
};

MemoryPeaks memory_peaks(const memory::MemorySnapshot& snapshot);

// "0 B", "512 B", "3.5 KiB", "12.3 MiB", "1.50 GiB" (powers of 1024).
std::string format_bytes(std::uint64_t bytes);

// `ranks` > 1 says the numbers are the maxima over that many ranks.
std::string memory_banner(const MemoryPeaks& peaks, int ranks);
// Every category by name, and "total"; bytes.
nlohmann::json memory_record(const MemoryPeaks& peaks);

}  // namespace kiln::metrics
