#pragma once
// What a piece of memory is for (DESIGN.md §4): every long-lived buffer of a training step
// belongs to exactly one category, so the peak report says where the bytes went.
#include <array>
#include <cstdint>
#include <string_view>

namespace kiln::memory {

enum class MemoryCategory : std::uint8_t {
  parameters,       // the model's values
  gradients,        // their gradients
  optimizer_state,  // AdamW moments (this rank's ZeRO shard)
  activations,      // the forward's saved tensors and the backward's scratch
  communication,    // data-parallel / ZeRO staging
  pipeline,         // buffers between pipeline stages
  kv_cache,         // keys and values for incremental decoding
  workspace,        // everything else: per-step scratch, file I/O, tests
};

inline constexpr std::array<MemoryCategory, 8> kMemoryCategories{
    MemoryCategory::parameters,    MemoryCategory::gradients, MemoryCategory::optimizer_state,
    MemoryCategory::activations,   MemoryCategory::communication, MemoryCategory::pipeline,
    MemoryCategory::kv_cache,      MemoryCategory::workspace};

// "parameters", "optimizer_state", ...: the keys of the report in metrics.jsonl.
std::string_view memory_category_name(MemoryCategory category);

}  // namespace kiln::memory
