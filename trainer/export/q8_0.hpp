#pragma once
// ggml's Q8_0 quantisation: blocks of 32 values, each stored as an fp16 scale d followed by 32
// int8 q, value = d * q, with d = max|x| / 127 and q = round(x / d) (ggml's reference
// quantize_row_q8_0). 34 bytes per 32 values: 8.5 bits per weight, error <= d / 2.
#include <cstddef>
#include <span>
#include <vector>

namespace kiln::interop {

// values.size() must be a multiple of 32.
std::vector<std::byte> quantize_q8_0(std::span<const float> values);
std::vector<float> dequantize_q8_0(std::span<const std::byte> blocks);

}  // namespace kiln::interop
