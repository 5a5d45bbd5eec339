// Q8_0 blocks as ggml lays them out: fp16 scale max|x|/127, then round(x / scale) as int8.
#include <gtest/gtest.h>

#include <cstring>

#include "kernels/tensor.hpp"
#include "trainer/core/error.hpp"
#include "trainer/export/q8_0.hpp"

namespace kiln::interop {
namespace {

TEST(Q8_0, BlockLayoutAndRounding) {
  std::vector<float> values(32, 0.0f);
  values[0] = 127.0f;   // scale 1
  values[1] = -3.4f;    // -3
  values[2] = 2.5f;     // rounds away from zero: 3
  const auto bytes = quantize_q8_0(values);
  ASSERT_EQ(bytes.size(), 34u);
  std::uint16_t scale = 0;
  std::memcpy(&scale, bytes.data(), 2);
  EXPECT_EQ(to_float(Float16{scale}), 1.0f);
  EXPECT_EQ(static_cast<std::int8_t>(bytes[2]), 127);
  EXPECT_EQ(static_cast<std::int8_t>(bytes[3]), -3);
  EXPECT_EQ(static_cast<std::int8_t>(bytes[4]), 3);
  const auto back = dequantize_q8_0(bytes);
  EXPECT_EQ(back[0], 127.0f);
  EXPECT_EQ(back[1], -3.0f);
}

// Half a step, plus 127 times the fp16 rounding of the scale (relative 2^-11): 0.5625 steps.
TEST(Q8_0, ErrorIsAtMostHalfAStepPlusScaleRounding) {
  std::vector<float> values(96);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.37f * static_cast<float>(i)) * (1.0f + static_cast<float>(i / 32));
  const auto back = dequantize_q8_0(quantize_q8_0(values));
  for (std::size_t block = 0; block < 3; ++block) {
    float amax = 0.0f;
    for (std::size_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(values[block * 32 + i]));
    for (std::size_t i = 0; i < 32; ++i) EXPECT_LE(std::fabs(back[block * 32 + i] - values[block * 32 + i]), 0.5625f * amax / 127.0f);
  }
  const std::vector<float> zeros(32, 0.0f);
  EXPECT_EQ(dequantize_q8_0(quantize_q8_0(zeros)), zeros);
  EXPECT_THROW(quantize_q8_0(std::vector<float>(31)), Error);
  EXPECT_THROW(dequantize_q8_0(std::vector<std::byte>(33)), Error);
}

}  // namespace
}  // namespace kiln::interop
