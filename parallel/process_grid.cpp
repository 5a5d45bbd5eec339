#include "parallel/process_grid.hpp"

#include <fmt/format.h>

#include "trainer/core/error.hpp"

namespace kiln::parallel {

ProcessGrid::ProcessGrid(Communicator& world, int dp, int tp, int pp, CommunicatorBackend backend, int cp)
    : world_(world), dp_size_(dp), tp_size_(tp), pp_size_(pp), cp_size_(cp), backend_(backend) {
  if (dp < 1 || tp < 1 || pp < 1 || cp < 1)
    fail("process grid: dp, tp, pp and cp must be >= 1 (got {}, {}, {}, {})", dp, tp, pp, cp);
  if (dp * tp * pp * cp != world.size()) {
    fail("process grid: dp x tp x cp x pp = {} x {} x {} x {} = {} but the job has {} ranks; launch {} ranks or change "
         "parallel.dp/tp/cp/pp", dp, tp, cp, pp, dp * tp * cp * pp, world.size(), dp * tp * cp * pp);
  }
  const int rank = world.rank();
  coordinates_ = {(rank / (tp * cp)) % dp, rank % tp, rank / (tp * cp * dp), (rank / tp) % cp};
  const auto [d, t, p, c] = coordinates_;
  // Colours identify the group; keys order its members by their coordinate along the group.
  const auto factory = communicator_factory(backend);
  const int tp_color = (p * dp + d) * cp + c, cp_color = (p * dp + d) * tp + t, dp_color = (p * cp + c) * tp + t;
  const int pp_color = (d * cp + c) * tp + t, replica_color = p * tp + t;
  tp_ = factory->data_group(world, tp_color, t, "tp");
  dp_ = factory->data_group(world, dp_color, d, "dp");
  pp_ = factory->data_group(world, pp_color, p, "pp");
  cp_ = factory->data_group(world, cp_color, c, "cp");
  if (cp > 1) replicas_ = factory->data_group(world, replica_color, replica_rank(), "replicas");
  const bool ends = p == 0 || p == pp - 1;
  auto embedding = factory->data_group(world, ends && pp > 1 ? pp_color : dp * tp * cp + rank, p, "embedding");
  if (ends && pp > 1) embedding_ = std::move(embedding);
  control_ = world.split(0, rank, "control");
  control_replicas_ = world.split(replica_color, replica_rank(), "control.replicas");
  control_pp_ = world.split(pp_color, p, "control.pp");
}

int ProcessGrid::world_rank_of(const GridCoordinates& at, int dp, int tp, int cp) {
  return at.tp + tp * (at.cp + cp * (at.dp + dp * at.pp));
}

std::string ProcessGrid::describe() const {
  std::string text = fmt::format("dp {}/{} tp {}/{} pp {}/{}", coordinates_.dp, dp_size_, coordinates_.tp, tp_size_,
                                 coordinates_.pp, pp_size_);
  if (cp_size_ > 1) text += fmt::format(" cp {}/{}", coordinates_.cp, cp_size_);
  return text;
}

}  // namespace kiln::parallel
