#include "parallel/process_grid.hpp"

#include <fmt/format.h>

#include "trainer/core/error.hpp"

namespace kiln::parallel {

ProcessGrid::ProcessGrid(Communicator& world, int dp, int tp, int pp)
    : world_(world), dp_size_(dp), tp_size_(tp), pp_size_(pp) {
  if (dp < 1 || tp < 1 || pp < 1) fail("process grid: dp, tp and pp must be >= 1 (got {}, {}, {})", dp, tp, pp);
  if (dp * tp * pp != world.size()) {
    fail("process grid: dp x tp x pp = {} x {} x {} = {} but the job has {} ranks; launch {} ranks or change "
         "parallel.dp/tp/pp", dp, tp, pp, dp * tp * pp, world.size(), dp * tp * pp);
  }
  const int rank = world.rank();
  coordinates_ = {(rank / tp) % dp, rank % tp, rank / (tp * dp)};
  const auto [d, t, p] = coordinates_;
  // Colours identify the group; keys order its members by their coordinate along the group.
  tp_ = split_communicator(world, p * dp + d, t, "tp");
  dp_ = split_communicator(world, p * tp + t, d, "dp");
  pp_ = split_communicator(world, d * tp + t, p, "pp");
  const bool ends = p == 0 || p == pp - 1;
  auto embedding = split_communicator(world, ends && pp > 1 ? d * tp + t : dp * tp + rank, p, "embedding");
  if (ends && pp > 1) embedding_ = std::move(embedding);
}

int ProcessGrid::world_rank_of(const GridCoordinates& at, int dp, int tp) {
  return at.tp + tp * (at.dp + dp * at.pp);
}

std::string ProcessGrid::describe() const {
  return fmt::format("dp {}/{} tp {}/{} pp {}/{}", coordinates_.dp, dp_size_, coordinates_.tp, tp_size_,
                     coordinates_.pp, pp_size_);
}

}  // namespace kiln::parallel
