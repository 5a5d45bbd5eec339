#pragma once
// Bytes one rank sends per optimizer step, per group, for a layout: the analytic count that
// scripts/bench_parallel.py compares with what kiln's communicators measure (Megatron-LM's
// accounting with ring collectives, as parallel/communicator.hpp counts: an all-reduce of
// S bytes over n ranks sends 2 (n-1)/n S per rank, a reduce-scatter or all-gather (n-1)/n S).
//
// Per micro-batch, with A = [B, T/cp, C] activations (B the micro-batch size) in the storage dtype:
//   tp  without SP: 2 all-reduces of A per block forward and 2 backward, one for the
//       vocab-parallel embedding (first stage) and one for the head's input gradient (last
//       stage), and the cross-entropy's row statistics, 3 x [B T/cp] f32 (last stage).
//       With SP every all-reduce becomes an all-gather and a reduce-scatter of A, and each
//       column-parallel backward gathers its input again: per block 10 (n-1)/n A instead of
//       8; embedding 2 (n-1)/n A; head 3 (n-1)/n A; plus, once per step, the all-reduce of the
//       partial gradients SP leaves (norms, learned positions) in the rank's optimizer range
//       (under ZeRO, dp rank 0's; another shard may hold a few more or fewer norm weights).
//   cp  the K|V ring (cp_and_recompute.hpp).
//   pp  one stage activation forward (all but the last stage) and its gradient backward (all but
//       the first): A, or A / tp under SP.
// Per step:
//   dp  an all-reduce of the rank's gradients over dp x cp, or under ZeRO-1 a reduce-scatter
//       of the gradients and an all-gather of the updated parameters (in the values' dtype).
//   embedding  tied embeddings split over the first and last stage: an all-reduce of the
//       embedding gradient between the two (pp > 1).
// The host's scalars (token counts, loss, stop flag, gradient norm) travel on control groups
// and are not counted.
#include <cstdint>

#include "kernels/tensor.hpp"
#include "trainer/plan/plan_layout.hpp"
#include "trainer/plan/rank_memory.hpp"

namespace kiln::plan {

struct GroupBytes {
  double tp = 0, cp = 0, pp = 0, dp = 0, embedding = 0;
  double total() const { return tp + cp + pp + dp + embedding; }
};

// Bytes per ring collective of `bytes` over `ranks`: factor (n-1)/n x bytes (factor 2: all-reduce).
double ring_bytes(int ranks, double bytes, double factor);

struct StageTraffic {
  GroupBytes per_micro_batch;  // tp, cp and pp traffic of one micro-batch's forward and backward
  GroupBytes per_step;         // once per optimizer step: dp, embedding and SP's gradient sum (tp)
  GroupBytes step_total(int micro_batches) const;
};

// rank: the stage's buffers (build_rank_buffers); seq_len: the whole sequence (not / cp).
StageTraffic stage_traffic(const PlanLayout& layout, const RankBuffers& rank, int stage, std::int64_t seq_len,
                           DType values, DType gradients);

}  // namespace kiln::plan
