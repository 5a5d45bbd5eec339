#pragma once
// The process grid (DESIGN.md §6): world = dp x pp x tp, ranks ordered tp fastest, then dp,
// then pp, so that the ranks of a tensor-parallel group are neighbours (one node):
//   world_rank = tp_rank + tp * (dp_rank + dp * pp_rank)
// Each rank belongs to one group of each kind: tp (same dp, pp), dp (same tp, pp) and pp (same
// tp, dp). The first and last pipeline stages of a (tp, dp) column also form the embedding
// group that keeps tied input/output embeddings in step.
//
// The data groups come from a CommunicatorFactory (the backend that moves tensors). Beside
// them the grid keeps control groups: host communicators over the same ranks for scalars the
// host decides with (loss, token counts, stop flags), so such a decision never queues behind
// gradient buckets in flight on a data group, and never needs a device tensor.
#include <memory>
#include <string>

#include "parallel/communicator.hpp"
#include "parallel/communicator_factory.hpp"

namespace kiln::parallel {

struct GridCoordinates {
  int dp = 0;
  int tp = 0;
  int pp = 0;
};

class ProcessGrid {
 public:
  // Every rank of `world` calls it. Throws kiln::Error when dp * tp * pp != world size.
  ProcessGrid(Communicator& world, int dp, int tp, int pp, CommunicatorBackend backend = CommunicatorBackend::host);

  int dp_size() const { return dp_size_; }
  int tp_size() const { return tp_size_; }
  int pp_size() const { return pp_size_; }
  const GridCoordinates& coordinates() const { return coordinates_; }
  int dp_rank() const { return coordinates_.dp; }
  int tp_rank() const { return coordinates_.tp; }
  int pp_rank() const { return coordinates_.pp; }
  bool first_stage() const { return coordinates_.pp == 0; }
  bool last_stage() const { return coordinates_.pp == pp_size_ - 1; }

  Communicator& world() { return world_; }
  Communicator& tp() { return *tp_; }
  Communicator& dp() { return *dp_; }
  Communicator& pp() { return *pp_; }
  // First and last stage of this rank's (tp, dp) column; null when pp == 1 or this rank is a
  // middle stage.
  Communicator* embedding() { return embedding_.get(); }
  CommunicatorBackend backend() const { return backend_; }

  // Control groups (host scalars): the whole job, and the same ranks as dp and pp.
  Communicator& control() { return *control_; }
  Communicator& control_dp() { return *control_dp_; }
  Communicator& control_pp() { return *control_pp_; }

  static int world_rank_of(const GridCoordinates& at, int dp, int tp);
  // "dp 1/2 tp 0/2 pp 1/2"
  std::string describe() const;

 private:
  Communicator& world_;
  int dp_size_, tp_size_, pp_size_;
  GridCoordinates coordinates_;
  CommunicatorBackend backend_;
  std::unique_ptr<Communicator> tp_, dp_, pp_, embedding_;
  std::unique_ptr<Communicator> control_, control_dp_, control_pp_;
};

}  // namespace kiln::parallel
