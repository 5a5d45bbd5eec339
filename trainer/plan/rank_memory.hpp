#pragma once
// What one rank of a layout holds, per memory category: that rank's training buffers built as
// the trainer builds them (Trainer::State::build_model: the model with its parameters,
// gradients and one activation arena per pipeline slot, DataParallel with ZeRO's staging,
// AdamW's moments and masters, the pipeline links), on reserved address space
// (ReservingAllocator) and over size-only groups (SizeOnlyCommunicator), and read from the
// memory ledger the training report reads. So the plan's bytes are the trainer's by
// construction, not a second formula; only cp and recomputation, which the trainer lacks,
// are applied on top (cp_and_recompute.hpp).
#include <cstdint>

#include "kernels/memory/arena_plan.hpp"
#include "kernels/tensor.hpp"
#include "trainer/metrics/memory_report.hpp"
#include "trainer/model/activations.hpp"
#include "trainer/model/model_config.hpp"

namespace kiln::plan {

// One rank: tp rank 0 and dp rank 0 of pipeline stage `stage` (their buffers are the largest:
// tp ranks hold equal shards, and ZeRO's first shards are the full-size ones).
struct RankPlacement {
  int tp = 1, pp = 1, stage = 0;
  int gradient_replicas = 1;  // ranks the gradients are reduced over (dp x cp)
  bool zero = false;
  bool sequence_parallel = false;
  std::int64_t micro_batch_size = 1;
  std::int64_t tokens = 1;  // positions of each sequence on this rank (seq_len / cp)
  model::Recompute recompute = model::Recompute::none;
  int micro_batches = 1;
};

struct RankBuffers {
  metrics::MemoryPeaks bytes;         // per category, and their sum as `total`
  model::StageDims dims;              // the rank's widths and blocks
  DType gradient_dtype = DType::F32;  // the parameter store's (f32 under bf16 values)
  std::int64_t parameters = 0;        // elements of the rank's flat parameter buffer
  std::int64_t owned_begin = 0;       // the optimizer's range of it (this rank's ZeRO shard)
  std::int64_t owned_end = 0;
  std::int64_t embedding_copy = 0;         // elements of a tied embed.weight kept on a pipeline end (pp > 1)
  std::int64_t chunk_gradients_owned = 0;  // sequence parallelism's partial gradients in the owned range
  memory::ArenaPlan activation_plan;       // one pipeline slot's activation arena
  int pipeline_slots = 1;
};

RankBuffers build_rank_buffers(const model::ModelConfig& config, DType dtype, const RankPlacement& placement);

}  // namespace kiln::plan
