#include "parallel/process_grid.hpp"

#include <fmt/format.h>

#include "trainer/core/error.hpp"

namespace kiln::parallel {

ProcessGrid::ProcessGrid(Communicator& world, int dp, int tp, int pp, CommunicatorBackend backend)
    : world_(world), dp_size_(dp), tp_size_(tp), pp_size_(pp), backend_(backend) {
  if (dp < 1 || tp < 1 || pp < 1) fail("process grid: dp, tp and pp must be >= 1 (got {}, {}, {})", dp, tp, pp);
  if (dp * tp * pp != world.size()) {
    fail("process grid: dp x tp x pp = {} x {} x {} = {} but the job has {} ranks; launch {} ranks or change "
         "parallel.dp/tp/pp", dp, tp, pp, dp * tp * pp, world.size(), dp * tp * pp);
  }
  const int rank = world.rank();
  coordinates_ = {(rank / tp) % dp, rank % tp, rank / (tp * dp)};
  const auto [d, t, p] = coordinates_;
  // Colours identify the group; keys order its members by their coordinate along the group.
  const auto factory = communicator_factory(backend);
  const int tp_color = p * dp + d, dp_color = p * tp + t, pp_color = d * tp + t;
  tp_ = factory->data_group(world, tp_color, t, "tp");
  dp_ = factory->data_group(world, dp_color, d, "dp");
  pp_ = factory->data_group(world, pp_color, p, "pp");
  const bool ends = p == 0 || p == pp - 1;
  auto embedding = factory->data_group(world, ends && pp > 1 ? d * tp + t : dp * tp + rank, p, "embedding");
  if (ends && pp > 1) embedding_ = std::move(embedding);
  control_ = world.split(0, rank, "control");
  control_dp_ = world.split(dp_color, d, "control.dp");
  control_pp_ = world.split(pp_color, p, "control.pp");
}

int ProcessGrid::world_rank_of(const GridCoordinates& at, int dp, int tp) {
  return at.tp + tp * (at.dp + dp * at.pp);
}

std::string ProcessGrid::describe() const {
  return fmt::format("dp {}/{} tp {}/{} pp {}/{}", coordinates_.dp, dp_size_, coordinates_.tp, tp_size_,
                     coordinates_.pp, pp_size_);
}

}  // namespace kiln::parallel
