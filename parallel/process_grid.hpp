#pragma once
// The process grid (DESIGN.md §6): world = dp x pp x cp x tp, ranks ordered tp fastest, then
// cp, then dp, then pp, so that the ranks of a tensor-parallel group are neighbours (one node)
// and a context-parallel group comes next:
//   world_rank = tp_rank + tp * (cp_rank + cp * (dp_rank + dp * pp_rank))
// Each rank belongs to one group of each kind: tp (same cp, dp, pp), cp (same tp, dp, pp), dp
// (same tp, cp, pp: the ranks that read different samples) and pp (same tp, cp, dp). The
// replicas group (same tp and pp: dp x cp ranks) holds the same parameters, so it is the one
// gradients are reduced over and ZeRO shards across; without cp it is the dp group. The first
// and last pipeline stages of a (tp, cp, dp) column also form the embedding group that keeps
// tied input/output embeddings in step.
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
  int cp = 0;
};

class ProcessGrid {
 public:
  // Every rank of `world` calls it. Throws kiln::Error when dp * tp * pp * cp != world size.
  ProcessGrid(Communicator& world, int dp, int tp, int pp, CommunicatorBackend backend = CommunicatorBackend::host,
              int cp = 1);

  int dp_size() const { return dp_size_; }
  int tp_size() const { return tp_size_; }
  int pp_size() const { return pp_size_; }
  int cp_size() const { return cp_size_; }
  const GridCoordinates& coordinates() const { return coordinates_; }
  int dp_rank() const { return coordinates_.dp; }
  int tp_rank() const { return coordinates_.tp; }
  int pp_rank() const { return coordinates_.pp; }
  int cp_rank() const { return coordinates_.cp; }
  // This rank's place among the ranks that hold the same parameters (dp x cp).
  int replica_rank() const { return coordinates_.dp * cp_size_ + coordinates_.cp; }
  bool first_stage() const { return coordinates_.pp == 0; }
  bool last_stage() const { return coordinates_.pp == pp_size_ - 1; }

  Communicator& world() { return world_; }
  Communicator& tp() { return *tp_; }
  Communicator& dp() { return *dp_; }
  Communicator& pp() { return *pp_; }
  Communicator& cp() { return *cp_; }
  // dp x cp: gradients are summed and ZeRO's shards cut over it (the dp group when cp = 1).
  Communicator& replicas() { return replicas_ ? *replicas_ : *dp_; }
  // First and last stage of this rank's (tp, dp) column; null when pp == 1 or this rank is a
  // middle stage.
  Communicator* embedding() { return embedding_.get(); }
  CommunicatorBackend backend() const { return backend_; }

  // Control groups (host scalars): the whole job, and the same ranks as replicas and pp.
  Communicator& control() { return *control_; }
  Communicator& control_replicas() { return *control_replicas_; }
  Communicator& control_pp() { return *control_pp_; }

  static int world_rank_of(const GridCoordinates& at, int dp, int tp, int cp = 1);
  // "dp 1/2 tp 0/2 pp 1/2" (and "cp 0/2" when cp > 1)
  std::string describe() const;

 private:
  Communicator& world_;
  int dp_size_, tp_size_, pp_size_, cp_size_;
  GridCoordinates coordinates_;
  CommunicatorBackend backend_;
  std::unique_ptr<Communicator> tp_, dp_, pp_, cp_, replicas_, embedding_;
  std::unique_ptr<Communicator> control_, control_replicas_, control_pp_;
};

}  // namespace kiln::parallel
