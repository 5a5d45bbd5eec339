// The memory report's text and JSON.
#include "trainer/metrics/memory_report.hpp"

#include <gtest/gtest.h>

#include "kernels/tensor.hpp"
#include "trainer/metrics/metrics_log.hpp"

namespace {

using kiln::memory::MemoryCategory;
using kiln::metrics::format_bytes;

TEST(MemoryReport, FormatsBytesInBinaryUnits) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(5u << 20), "5.0 MiB");
  EXPECT_EQ(format_bytes(3ull << 29), "1.50 GiB");
}

TEST(MemoryReport, BannerAndRecordHoldEveryCategoryAndTheTotal) {
  kiln::memory::MemoryLedger ledger;
  ledger.record_allocation(MemoryCategory::parameters, kiln::Device::Cpu, 2048);
  ledger.record_allocation(MemoryCategory::optimizer_state, kiln::Device::Cpu, 4096);
  const auto peaks = kiln::metrics::memory_peaks(ledger.snapshot(kiln::Device::Cpu));
  const auto record = kiln::metrics::memory_record(peaks);
  EXPECT_EQ(record.size(), kiln::memory::kMemoryCategories.size() + 1);
  EXPECT_EQ(record["parameters"], 2048);
  EXPECT_EQ(record["optimizer_state"], 4096);
  EXPECT_EQ(record["kv_cache"], 0);
  EXPECT_EQ(record["total"], 6144);
  const std::string banner = kiln::metrics::memory_banner(peaks, 2);
  EXPECT_NE(banner.find("max over 2 ranks"), std::string::npos);
  EXPECT_NE(banner.find("parameters 2.0 KiB"), std::string::npos);
  EXPECT_NE(banner.find("optimizer_state 4.0 KiB"), std::string::npos);
  EXPECT_NE(banner.find("total 6.0 KiB"), std::string::npos);
}

}  // namespace

namespace {

TEST(MemoryReport, StepRecordsCarryThePeaksOnlyWhenGiven) {
  kiln::metrics::StepMetrics metrics;
  metrics.step = 3;
  const auto plain = kiln::metrics::step_record(metrics);
  EXPECT_FALSE(plain.contains("memory_peak_bytes"));
  kiln::metrics::MemoryPeaks peaks;
  peaks.categories[static_cast<std::size_t>(MemoryCategory::activations)] = 4096;
  peaks.total = 4096;
  metrics.memory_peak_bytes = kiln::metrics::memory_record(peaks);
  const auto record = kiln::metrics::step_record(metrics);
  EXPECT_EQ(record["memory_peak_bytes"]["activations"], 4096);
  EXPECT_EQ(record["memory_peak_bytes"]["total"], 4096);
  for (const auto& [key, value] : plain.items()) EXPECT_EQ(record[key], value) << key;  // the rest unchanged
}

}  // namespace
