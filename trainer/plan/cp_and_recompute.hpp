#pragma once
// What the plan adds for context parallelism and activation recomputation on top of the
// trainer's own buffers (rank_memory.cpp plans the activation arena for seq_len / cp tokens and
// the recompute mode, as the trainer does).
//
// Context parallelism (parallel/context_parallel.hpp): attention passes K|V blocks around the
// cp ring (ring attention):
//   forward, per layer: each rank's K|V block [B, T/cp, 2 Hkv/tp Dh] travels cp - 1 hops:
//     (cp - 1)/cp x B T x 2 Hkv/tp Dh x bytes sent per rank
//   backward, per layer: the K|V blocks go round again and the dK|dV blocks once: twice that
//   memory: RingAttention's scratch (two K|V and two dK|dV blocks, the dq sum, one chunk's
//     partial results), allocated at the first forward, counted as communication
//   gradients: the cp ranks hold the same parameters, so gradients are reduced, and ZeRO
//     shards, over dp x cp (PlanLayout::gradient_replicas)
//
// Recomputation (trainer/model/activations.hpp): extra forward FLOPs per token and layer:
// selective recomputes norms and the MLP activation only (no GEMM: counted as none); full runs
// the block's forward again, a third of its training FLOPs.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "trainer/model/activations.hpp"
#include "trainer/model/model_config.hpp"
#include "trainer/plan/plan_layout.hpp"

namespace kiln::plan {

// Positions of each sequence one rank runs.
std::int64_t tokens_per_rank(std::int64_t seq_len, int cp);

// The K|V and dK|dV ring buffers of one rank (0 without cp); dims: the rank's (tp-local) widths.
std::uint64_t context_ring_buffer_bytes(const model::StageDims& dims, std::int64_t micro_batch_size,
                                        std::int64_t seq_len, int cp, std::size_t value_size);
// Bytes one rank sends around the cp ring for one micro-batch, forward and backward, over the
// stage's dims.layers blocks.
double context_ring_bytes_per_micro_batch(const model::StageDims& dims, std::int64_t micro_batch_size,
                                          std::int64_t seq_len, int cp, std::size_t value_size);

// Extra forward FLOPs per token and block (whole model width; divide by tp for a rank).
// block_training_flops: the block's FLOPs per token for forward + backward (6 N + attention).
double recompute_flops_per_token(Recompute recompute, double block_training_flops);

}  // namespace kiln::plan
