#include "trainer/metrics/metrics_log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace {

namespace fs = std::filesystem;
using kiln::metrics::MetricsLog;
using kiln::metrics::StepMetrics;

std::vector<nlohmann::json> read_records(const fs::path& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line);) records.push_back(nlohmann::json::parse(line));
  return records;
}

StepMetrics step(std::int64_t number, double loss) {
  StepMetrics metrics;
  metrics.step = number;
  metrics.loss = loss;
  metrics.lr = 3e-4;
  metrics.grad_norm = 0.8;
  metrics.tokens_per_second = 41200;
  metrics.tokens_seen = number * 2048;
  return metrics;
}

class MetricsLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("kiln_metrics_{}_{}", ::getpid(),
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path path() const { return dir_ / "run" / "metrics.jsonl"; }
  fs::path dir_;
};

TEST_F(MetricsLogTest, WritesOneFlushedObjectPerLine) {
  auto log = MetricsLog::create(path());
  auto first = step(1, 3.5);
  first.mfu = 0.123;
  log.write_step(first);
  // Readable before the log is closed: every line is flushed.
  auto records = read_records(path());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["step"], 1);
  EXPECT_DOUBLE_EQ(records[0]["loss"].get<double>(), 3.5);
  EXPECT_DOUBLE_EQ(records[0]["lr"].get<double>(), 3e-4);
  EXPECT_DOUBLE_EQ(records[0]["mfu"].get<double>(), 0.123);
  EXPECT_EQ(records[0]["tokens"], 2048);
  log.write_eval(1, 3.25);
  log.write_step(step(2, std::numeric_limits<double>::quiet_NaN()));
  records = read_records(path());
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1], (nlohmann::json{{"step", 1}, {"val_loss", 3.25}}));
  EXPECT_TRUE(records[2]["loss"].is_null());  // NaN has no JSON spelling
  EXPECT_FALSE(records[2].contains("mfu"));
}

TEST_F(MetricsLogTest, CreateStartsAfresh) {
  MetricsLog::create(path()).write_step(step(1, 3.0));
  MetricsLog::create(path()).write_step(step(1, 2.0));
  const auto records = read_records(path());
  ASSERT_EQ(records.size(), 1u);
  EXPECT_DOUBLE_EQ(records[0]["loss"].get<double>(), 2.0);
}

TEST_F(MetricsLogTest, ResumeKeepsEarlierStepsDropsLaterOnesAndTornLine) {
  {
    auto log = MetricsLog::create(path());
    for (int s = 1; s <= 5; ++s) log.write_step(step(s, 4.0 - s * 0.1));
    log.write_eval(4, 3.3);
  }
  std::ofstream(path(), std::ios::app) << R"({"step":6,"loss":)";  // crash mid-line
  auto log = MetricsLog::resume(path(), 4);
  log.write_step(step(5, 1.0));
  const auto records = read_records(path());
  ASSERT_EQ(records.size(), 6u);
  EXPECT_EQ(records[3]["step"], 4);
  EXPECT_EQ(records[4], (nlohmann::json{{"step", 4}, {"val_loss", 3.3}}));
  EXPECT_EQ(records[5]["step"], 5);
  EXPECT_DOUBLE_EQ(records[5]["loss"].get<double>(), 1.0);
}

TEST_F(MetricsLogTest, ResumeWithoutAnExistingFileCreatesIt) {
  MetricsLog::resume(path(), 10).write_eval(10, 2.5);
  EXPECT_EQ(read_records(path()).size(), 1u);
}

}  // namespace
