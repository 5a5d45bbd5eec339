#pragma once
// The two layout dimensions kiln train does not have yet, context parallelism and activation
// recomputation, in one place: when parallel.cp and train.recompute land, the plan switches
// them on here (and in the enumeration's PlanSpace::with_cp_and_recompute).
//
// Context parallelism (cp ranks between tp and dp): each sample's sequence is split over the
// cp group; a rank runs T/cp positions of every micro-batch (its activation arena is planned
// for T/cp) and attention passes K|V blocks around the cp ring (ring attention):
//   forward, per layer: each rank's K|V block [B, T/cp, 2 Hkv/tp Dh] travels cp - 1 hops:
//     (cp - 1)/cp x B T x 2 Hkv/tp Dh x bytes sent per rank
//   backward, per layer: the K|V blocks go round again and the dK|dV blocks once: twice that
//   memory: two K|V blocks in flight (the one attended to, the one arriving) and two dK|dV
//     blocks in the backward, counted as communication
//   compute: T/cp tokens per rank (load-balanced causal chunks assumed)
//   gradients: the cp ranks hold the same parameters, so gradients are reduced, and ZeRO
//     shards, over dp x cp (PlanLayout::gradient_replicas)
//
// Recomputation (see Recompute in plan_layout.hpp): a dropped tensor is kept for one block only,
// the one the backward is recomputing, instead of for every block of the stage.
//   extra forward FLOPs per token and layer: selective, the q|k|v and MLP-input GEMMs again,
//   2 C (qkv + mlp_in); full, the block's forward again, a third of its training FLOPs.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kernels/memory/arena_plan.hpp"
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

// Whether `recompute` drops a block's activation slot (the name after "blocks.<l>.", as
// trainer/model/activations.cpp names them) instead of keeping it for the backward.
bool recomputes(Recompute recompute, std::string_view block_slot);
// Bytes a training arena planned as `plan` (one pipeline slot's) saves under `recompute`: the
// dropped slots of every block but one.
std::uint64_t recompute_savings(const memory::ArenaPlan& plan, Recompute recompute);
// Extra forward FLOPs per token and block (whole model width; divide by tp for a rank).
// block_training_flops: the block's FLOPs per token for forward + backward (6 N + attention).
double recompute_flops_per_token(const model::ModelConfig& config, Recompute recompute, double block_training_flops);

}  // namespace kiln::plan
