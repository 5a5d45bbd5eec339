#include "trainer/plan/rank_memory.hpp"

#include <algorithm>

#include "kernels/memory/memory_ledger.hpp"
#include "parallel/data_parallel.hpp"
#include "parallel/pipeline.hpp"
#include "parallel/pipeline_links.hpp"
#include "trainer/model/transformer.hpp"
#include "trainer/optim/adamw.hpp"
#include "trainer/plan/reserving_allocator.hpp"
#include "trainer/plan/size_only_communicator.hpp"

namespace kiln::plan {

namespace {

// The process ledger's bytes held now on the planning device, minus those held at construction:
// what the buffers built in between take.
class LedgerDelta {
 public:
  LedgerDelta() : before_(memory::MemoryLedger::process().snapshot(Device::Cpu)) {}

  metrics::MemoryPeaks taken() const {
    const memory::MemorySnapshot now = memory::MemoryLedger::process().snapshot(Device::Cpu);
    metrics::MemoryPeaks bytes;
    for (std::size_t i = 0; i < bytes.categories.size(); ++i) {
      bytes.categories[i] = now.categories[i].current - before_.categories[i].current;
      bytes.total += bytes.categories[i];
    }
    return bytes;
  }

 private:
  memory::MemorySnapshot before_;
};

// The replicated parameters that sequence parallelism applies to a chunk of the sequence only,
// whose gradients it sums over tp once per step (Transformer::sequence_chunk_gradients: the
// norms and the learned positions).
bool gradient_summed_over_sequence_chunks(const std::string& name) {
  return name == "pos_embed.weight" || name.starts_with("final_norm.") ||
         name.find(".attn_norm.") != std::string::npos || name.find(".mlp_norm.") != std::string::npos;
}

std::int64_t chunk_gradients_in(const model::ParameterStore& params, std::int64_t begin, std::int64_t end) {
  std::int64_t elements = 0;
  for (const model::ParameterInfo& info : params.infos()) {
    if (!gradient_summed_over_sequence_chunks(info.name)) continue;
    elements += std::max<std::int64_t>(0, std::min(end, info.offset + info.numel()) - std::max(begin, info.offset));
  }
  return elements;
}

std::int64_t embedding_copy_of(const model::ModelConfig& config, const model::ParameterStore& params,
                               const RankPlacement& at) {
  const bool pipeline_end = at.stage == 0 || at.stage == at.pp - 1;
  if (!config.tie_embeddings || at.pp == 1 || !pipeline_end) return 0;
  return params.info("embed.weight").numel();
}

model::ParallelPlacement model_placement(const RankPlacement& at, parallel::Communicator& tp) {
  model::ParallelPlacement placement;
  placement.tp = &tp;
  placement.tp_size = at.tp;
  placement.pp_rank = at.stage;
  placement.pp_size = at.pp;
  placement.sequence_parallel = at.sequence_parallel;
  return placement;
}

// The pipeline slots beyond the one built: each holds an arena like `slot`.
void count_pipeline_slots(RankBuffers& rank, const RankPlacement& at, const model::Activations& slot) {
  if (at.pp > 1) rank.pipeline_slots = parallel::pipeline_slots(at.pp, at.stage, at.micro_batches);
  const auto more = static_cast<std::uint64_t>(rank.pipeline_slots - 1) * slot.bytes();
  rank.bytes.categories[static_cast<std::size_t>(memory::MemoryCategory::activations)] += more;
  rank.bytes.total += more;
  rank.activation_plan = slot.arena.plan();
}

void describe_parameters(RankBuffers& rank, const model::Transformer& model, const optim::AdamW& optimizer,
                         const RankPlacement& at) {
  const model::ParameterStore& params = model.parameters();
  rank.gradient_dtype = params.grad_dtype();
  rank.parameters = params.numel();
  rank.owned_begin = optimizer.begin();
  rank.owned_end = optimizer.end();
  rank.embedding_copy = embedding_copy_of(model.config(), params, at);
  if (at.sequence_parallel) rank.chunk_gradients_owned = chunk_gradients_in(params, rank.owned_begin, rank.owned_end);
}

}  // namespace

// The buffers in the order Trainer::State::build_model makes them. One pipeline slot's
// activation arena is planned, as Transformer::reserve_activations plans each slot's (all for
// the same [B, T]); the other slots are counted as copies of it.
RankBuffers build_rank_buffers(const model::ModelConfig& config, DType dtype, const RankPlacement& at) {
  ReservingAllocator allocator;  // declared first: it outlives every buffer below
  SizeOnlyCommunicator tp("tp", at.tp), dp("dp", at.gradient_replicas);
  const LedgerDelta ledger;
  const model::ParallelPlacement placement = model_placement(at, tp);
  const model::Transformer model(config, dtype, placement, allocator);
  const model::ParameterStore& params = model.parameters();
  const parallel::DataParallel data_parallel(dp, params.numel(), params.grad_dtype(), at.zero,
                                             model.gradient_final_offsets(), parallel::kDefaultBucketBytes,
                                             parallel::kDefaultMinBucketBytes, allocator);
  const optim::AdamW optimizer(params, {}, data_parallel.shard_begin(), data_parallel.shard_end());
  RankBuffers rank;
  rank.dims = model::stage_dims(model.config(), placement);
  rank.dims.recompute = at.recompute;  // as Transformer::set_recompute, before the arena is planned
  model::Activations slot;
  slot.arena = memory::Arena(memory::MemoryCategory::activations, allocator);
  model::plan_activations(slot, rank.dims, dtype, at.micro_batch_size, at.tokens, /*for_training=*/true);
  parallel::PipelineLinks links;
  links.place_in(allocator);
  if (at.pp > 1)
    links.plan(at.pp, at.stage, model.stage_activation_shape(at.micro_batch_size, at.tokens), params.dtype());
  rank.bytes = ledger.taken();
  count_pipeline_slots(rank, at, slot);
  describe_parameters(rank, model, optimizer, at);
  return rank;
}

}  // namespace kiln::plan
