#include "trainer/config/parallel_layout.hpp"

#include "trainer/core/error.hpp"

namespace kiln::config {

namespace {

int resolve_dp(const ParallelConfig& p, int world_size) {
  const int model_parallel = p.tp * p.cp * p.pp;
  if (world_size < 1 || world_size % model_parallel != 0) {
    fail("parallel: {} ranks cannot be split into tp = {} x cp = {} x pp = {} groups. Fix: launch a "
         "multiple of {} ranks, or change parallel.tp / parallel.cp / parallel.pp",
         world_size, p.tp, p.cp, p.pp, model_parallel);
  }
  const int dp = world_size / model_parallel;
  if (p.dp != 0 && p.dp != dp) {
    fail("parallel.dp: the recipe asks for dp = {}, but {} ranks with tp = {}, cp = {}, pp = {} give dp = "
         "{}. Fix: launch {} ranks or set parallel.dp: auto",
         p.dp, world_size, p.tp, p.cp, p.pp, dp, p.dp * model_parallel);
  }
  return dp;
}

}  // namespace

ParallelLayout resolve_layout(const Recipe& recipe, int world_size) {
  const auto& p = recipe.parallel;
  ParallelLayout layout;
  layout.tp = p.tp;
  layout.pp = p.pp;
  layout.cp = p.cp;
  layout.zero = p.zero;
  layout.dp = resolve_dp(p, world_size);
  layout.micro_batch_size = recipe.train.micro_batch_size;
  const std::int64_t per_round = layout.dp * layout.micro_batch_size;
  if (recipe.train.batch_size % per_round != 0) {
    fail("train.batch_size: {} sequences cannot be split over dp = {} ranks in micro-batches of {}. "
         "Fix: make train.batch_size a multiple of {}, or change train.micro_batch_size",
         recipe.train.batch_size, layout.dp, layout.micro_batch_size, per_round);
  }
  layout.micro_batches = static_cast<int>(recipe.train.batch_size / per_round);
  if (p.micro_batches != 0 && p.micro_batches != layout.micro_batches) {
    fail("parallel.micro_batches: {} disagrees with batch_size / (dp * micro_batch_size) = {}. "
         "Fix: set parallel.micro_batches: auto",
         p.micro_batches, layout.micro_batches);
  }
  if (layout.pp > 1 && layout.micro_batches < layout.pp) {
    fail("parallel.pp: {} pipeline stages need at least {} micro-batches per step, but batch_size / (dp * "
         "micro_batch_size) = {} / ({} * {}) = {}. Fix: raise train.batch_size or lower train.micro_batch_size",
         layout.pp, layout.pp, recipe.train.batch_size, layout.dp, layout.micro_batch_size, layout.micro_batches);
  }
  return layout;
}

nlohmann::json layout_to_json(const ParallelLayout& layout) {
  return {{"dp", layout.dp},
          {"tp", layout.tp},
          {"pp", layout.pp},
          {"cp", layout.cp},
          {"zero", layout.zero},
          {"micro_batch_size", layout.micro_batch_size},
          {"micro_batches", layout.micro_batches}};
}

namespace {

// A saved layout size: a whole number in [0, limit]. Checked before nlohmann converts it, as
// its float-to-int cast of an out-of-range value (3e25) is undefined behaviour.
std::int64_t layout_size(const nlohmann::json& json, const char* key, std::int64_t fallback = -1) {
  if (fallback >= 0 && !json.contains(key)) return fallback;
  const auto& value = json.at(key);
  constexpr std::int64_t kLimit = 1 << 30;
  if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::int64_t>() > kLimit ||
      (value.is_number_unsigned() && value.get<std::uint64_t>() > static_cast<std::uint64_t>(kLimit))) {
    fail("parallel layout: saved '{}' is {}; expected a whole number from 0 to {}", key, value.dump(), kLimit);
  }
  return value.get<std::int64_t>();
}

}  // namespace

ParallelLayout layout_from_json(const nlohmann::json& json) {
  try {
    ParallelLayout layout;
    layout.dp = static_cast<int>(layout_size(json, "dp"));
    layout.tp = static_cast<int>(layout_size(json, "tp"));
    layout.pp = static_cast<int>(layout_size(json, "pp"));
    layout.cp = static_cast<int>(layout_size(json, "cp", 1));  // before context parallelism: 1
    layout.zero = static_cast<int>(layout_size(json, "zero"));
    layout.micro_batch_size = layout_size(json, "micro_batch_size", 1);
    layout.micro_batches = static_cast<int>(layout_size(json, "micro_batches", 1));
    return layout;
  } catch (const nlohmann::json::exception& error) {
    fail("parallel layout: malformed saved layout {}: {}", json.dump(), error.what());
  }
}

}  // namespace kiln::config
