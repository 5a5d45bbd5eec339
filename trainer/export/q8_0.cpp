#include "trainer/export/q8_0.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/tensor.hpp"
#include "trainer/core/error.hpp"
#include "trainer/export/gguf_format.hpp"

namespace kiln::interop {

std::vector<std::byte> quantize_q8_0(std::span<const float> values) {
  if (values.size() % kQ8_0BlockElements != 0) fail("Q8_0 needs a multiple of 32 values, got {}", values.size());
  const std::size_t blocks = values.size() / kQ8_0BlockElements;
  std::vector<std::byte> out(blocks * kQ8_0BlockBytes);
  for (std::size_t b = 0; b < blocks; ++b) {
    const float* x = values.data() + b * kQ8_0BlockElements;
    float amax = 0.0f;
    for (std::size_t i = 0; i < kQ8_0BlockElements; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    const float inverse = d != 0.0f ? 1.0f / d : 0.0f;
    std::byte* block = out.data() + b * kQ8_0BlockBytes;
    const std::uint16_t scale = to_float16(d).bits;
    std::memcpy(block, &scale, sizeof scale);
    for (std::size_t i = 0; i < kQ8_0BlockElements; ++i) {
      const auto q = static_cast<std::int8_t>(std::lround(x[i] * inverse));
      std::memcpy(block + 2 + i, &q, 1);
    }
  }
  return out;
}

std::vector<float> dequantize_q8_0(std::span<const std::byte> blocks) {
  if (blocks.size() % kQ8_0BlockBytes != 0) fail("Q8_0 data of {} bytes is not whole 34-byte blocks", blocks.size());
  const std::size_t count = blocks.size() / kQ8_0BlockBytes;
  std::vector<float> out(count * kQ8_0BlockElements);
  for (std::size_t b = 0; b < count; ++b) {
    const std::byte* block = blocks.data() + b * kQ8_0BlockBytes;
    std::uint16_t scale = 0;
    std::memcpy(&scale, block, sizeof scale);
    const float d = to_float(Float16{scale});
    for (std::size_t i = 0; i < kQ8_0BlockElements; ++i) {
      std::int8_t q = 0;
      std::memcpy(&q, block + 2 + i, 1);
      out[b * kQ8_0BlockElements + i] = d * static_cast<float>(q);
    }
  }
  return out;
}

}  // namespace kiln::interop
