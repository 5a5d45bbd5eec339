#pragma once
// The process layout of a run: the recipe's parallel section resolved against the number of
// ranks actually launched (DESIGN.md §6: world = dp * pp * cp * tp).
#include <cstdint>
#include <nlohmann/json.hpp>

#include "trainer/config/recipe.hpp"

namespace kiln::config {

struct ParallelLayout {
  int dp = 1;
  int tp = 1;
  int pp = 1;
  int cp = 1;
  int zero = 0;
  std::int64_t micro_batch_size = 1;  // sequences per forward/backward on one rank
  int micro_batches = 1;              // per dp rank per optimizer step (gradient accumulation)

  int world_size() const { return dp * tp * cp * pp; }
  bool operator==(const ParallelLayout&) const = default;
};

// Decides dp when the recipe says auto and checks everything that needs the world size: world
// divisible by tp * pp, an explicit dp matching, batch_size divisible by dp * micro_batch_size.
// Throws kiln::Error naming the key and the fix.
ParallelLayout resolve_layout(const Recipe& recipe, int world_size);

// {"dp":..,"tp":..,"pp":..,"cp":..,"zero":..,"micro_batch_size":..,"micro_batches":..} for metadata.
nlohmann::json layout_to_json(const ParallelLayout& layout);
ParallelLayout layout_from_json(const nlohmann::json& json);

}  // namespace kiln::config
