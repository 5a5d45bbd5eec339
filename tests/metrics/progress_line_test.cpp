#include "trainer/metrics/progress_line.hpp"

#include <gtest/gtest.h>

#include "trainer/metrics/throughput.hpp"

namespace {

using namespace kiln::metrics;

TEST(ProgressLine, MatchesTheDocumentedFormat) {
  ProgressLine line;
  line.step = 120;
  line.total_steps = 2000;
  line.loss = 3.21412;
  line.lr = 3e-4;
  line.grad_norm = 0.8121;
  line.tokens_per_second = 41234;
  line.mfu = 0.1234;
  line.peak_flops = 1.5e12;
  line.eta_seconds = 252;
  EXPECT_EQ(format_progress_line(line),
            "step 120/2000 | loss 3.2141 | lr 3.00e-04 | grad 0.812 | 41.2k tok/s | MFU 12.3% "
            "(peak 1.5 TFLOP/s fp32) | ETA 4m12s");
}

TEST(ProgressLine, LeavesOutWhatIsUnknown) {
  ProgressLine line;
  line.step = 1;
  line.total_steps = 10;
  line.loss = 7.0;
  line.lr = 1e-3;
  line.grad_norm = 12.5;
  line.tokens_per_second = 950;
  EXPECT_EQ(format_progress_line(line),
            "step 1/10 | loss 7.0000 | lr 1.00e-03 | grad 12.500 | 950 tok/s");
}

TEST(ProgressLine, UnitsScale) {
  EXPECT_EQ(format_count(950), "950");
  EXPECT_EQ(format_count(1.5e6), "1.50M");
  EXPECT_EQ(format_count(2.1e9), "2.10G");
  EXPECT_EQ(format_duration(42), "42s");
  EXPECT_EQ(format_duration(3720), "1h02m");
  EXPECT_EQ(format_duration(183600), "2d03h");
  EXPECT_EQ(format_flops_rate(9.89e14), "989 TFLOP/s");
  EXPECT_EQ(format_flops_rate(3.2e10), "32.0 GFLOP/s");
  EXPECT_EQ(format_flops_rate(2e15), "2 PFLOP/s");
}

TEST(Throughput, SlidingWindowFollowsCurrentSpeed) {
  ThroughputMeter meter(2);
  EXPECT_EQ(meter.eta_seconds(10), std::nullopt);
  meter.record(1000, 10.0);  // a slow first step, then forgotten
  meter.record(1000, 1.0);
  meter.record(1000, 1.0);
  EXPECT_DOUBLE_EQ(meter.tokens_per_second(), 1000.0);
  EXPECT_DOUBLE_EQ(meter.seconds_per_step(), 1.0);
  EXPECT_DOUBLE_EQ(*meter.eta_seconds(30), 30.0);
}

}  // namespace
