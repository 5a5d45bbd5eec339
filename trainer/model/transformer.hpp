#pragma once
// The decoder-only transformer (GPT-2 and Llama families, DESIGN.md §5), llm.c style: an
// explicit forward that keeps its activations in an arena, and an explicit backward beside
// it that walks the same steps in reverse. No autograd, no tape.
//
//   tokens [B, T] -> embed (+ pos_embed) -> n_layers x block -> final norm -> lm_head
//                 -> logits [B*T, Vp] -> fused cross-entropy over the real vocabulary
//   block: x -> norm -> q|k|v (one GEMM) -> RoPE -> flash attention -> out proj -> + x = mid
//            mid -> norm -> up (GELU) or gate|up (SwiGLU, one GEMM) -> down -> + mid = x'
//
// All math goes through kiln::ops on this model's dtype: F32 to train, BF16 to train in mixed
// precision (bf16 weights and activations, f32 parameter gradients, fp32 compute inside the
// ops), F64 for whole-model gradient checks (same code, runtime dtype).
//
// Parallelism (DESIGN.md §6; Megatron-style). A Transformer built with a ParallelPlacement is
// one rank's part of the model (the layers that split and all-reduce are in
// parallel/tensor_parallel.hpp):
// - Tensor parallel (tp ranks): q|k|v and up / gate|up are column-parallel (this rank's heads
//   and hidden units); the attention output and MLP down projections are row-parallel: their
//   partial outputs are all-reduced (sum) over tp, then the replicated bias is added once.
//   In backward the input gradient of every column-parallel layer (the norm outputs) is
//   all-reduced, so the residual stream and everything replicated (norm weights, row-parallel
//   biases, pos_embed) get identical values and gradients on every tp rank. Embedding and LM
//   head are vocab-parallel: each rank looks up its rows (zeros elsewhere) and the embedding
//   is all-reduced; the loss is a vocab-parallel cross-entropy over local logits [N, Vp/tp]
//   (all-reduce MAX of the row max, SUM of the exp sums and target logits: full logits are
//   never gathered) and is identical on every tp rank.
// - Sequence parallelism (placement.sequence_parallel, tp > 1; Megatron SP): the residual
//   stream, the norms and their saved activations hold this rank's chunk of the sequence,
//   [B, T/tp, C]. The same layers then all-gather the norm outputs along the sequence before
//   each column-parallel GEMM (q|k|v, up / gate|up, the head) and reduce-scatter the partial
//   outputs of the row-parallel ones and of the embedding instead of all-reducing them; their
//   backward mirrors that. Attention and the MLP's hidden units see the whole sequence, as do
//   the cross-entropy and the batch's documents and positions. The gradients of the norms and
//   of pos_embed are then this chunk's share: complete_sequence_parallel_gradients() sums
//   them over tp before the optimizer. Pipeline stages exchange [B, T/tp, C] chunks.
// - Pipeline parallel (pp stages): this stage's blocks only; the first embeds, the last runs
//   final norm, head and loss. forward_stage/backward_stage move activations per micro-batch
//   slot; the caller (the 1F1B schedule) sends them between stages.
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/ops.hpp"
#include "parallel/context_parallel.hpp"
#include "parallel/tensor_parallel.hpp"
#include "trainer/model/activations.hpp"
#include "trainer/model/batch.hpp"
#include "trainer/model/device_batch.hpp"
#include "trainer/model/model_config.hpp"
#include "trainer/model/parameters.hpp"

namespace kiln::model {

// Keys (after RoPE) and values of every layer for incremental decoding (`kiln generate`).
struct KvCache {
  std::int64_t batch = 0;
  std::int64_t capacity = 0;        // positions it can hold (<= max_seq_len)
  std::int64_t length = 0;          // positions filled so far
  std::vector<Tensor> keys;    // per layer [B, capacity, Hkv, Dh], views of `arena`
  std::vector<Tensor> values;  // per layer [B, capacity, Hkv, Dh]
  memory::Arena arena{memory::MemoryCategory::kv_cache};
  void clear() { length = 0; }
};

// Views of every weight a forward/backward touches, in GEMM form (q|k|v and gate|up fused).
// Built once over the parameter values and once over the gradients.
struct BlockTensors {
  Tensor attn_norm_w, attn_norm_b;  // [C] (bias: LayerNorm only)
  Tensor qkv_w, qkv_b;              // [(Hq+2Hkv)*Dh, C], [(Hq+2Hkv)*Dh] (bias: gpt2)
  Tensor out_w, out_b;              // [C, Hq*Dh], [C]
  Tensor mlp_norm_w, mlp_norm_b;    // [C]
  Tensor mlp_in_w, mlp_in_b;        // [F, C] (GELU) or [2F, C] gate|up (SwiGLU)
  Tensor down_w, down_b;            // [C, F], [C]
};
// Local shapes: a rank holds its tensor-parallel shards (Vp/tp vocabulary rows, Hq/tp and
// Hkv/tp heads, F/tp hidden units) of its stage's tensors; the others are undefined.
struct ModelTensors {
  Tensor embed;                       // [Vp, C] (first stage)
  Tensor pos_embed;                   // [S, C] (gpt2, first stage)
  std::vector<BlockTensors> blocks;   // this stage's blocks, in order
  Tensor final_norm_w, final_norm_b;  // [C] (last stage)
  Tensor lm_head;                     // [Vp, C] (last stage): embed.weight when tied
};

class Transformer {
 public:
  // Parameters start at zero; call init_weights() or load values into parameters(). With
  // tp_size > 1 the placement needs a tp communicator before the first forward.
  // Parameters, gradients, activations, the loss sums and KV caches live in memory from
  // `allocator`: the host's, or the CUDA device's (cuda_backend::cuda_allocator()).
  explicit Transformer(const ModelConfig& config, DType dtype = DType::F32,
                       ParallelPlacement placement = {},
                       memory::Allocator& allocator = memory::host_allocator());

  const ModelConfig& config() const { return config_; }  // the global model
  const ParallelPlacement& placement() const { return placement_; }
  LayerRange layers() const { return params_.layers(); }  // this stage's blocks
  bool first_stage() const { return placement_.first_stage(); }
  bool last_stage() const { return placement_.last_stage(); }
  DType dtype() const { return params_.dtype(); }
  ParameterStore& parameters() { return params_; }
  const ParameterStore& parameters() const { return params_; }

  void init_weights(std::uint64_t run_seed);
  void zero_grads() { params_.zero_grads(); }

  // Sequence parallelism (placement.sequence_parallel with tp > 1).
  bool sequence_parallel() const { return dims_.sequence_shards > 1; }
  // What this stage receives and sends for a micro-batch [B, T]: [B, T, C], or this rank's
  // chunk [B, T/tp, C] under sequence parallelism.
  Shape stage_activation_shape(std::int64_t batch, std::int64_t seq) const;
  // Sums over tp the gradients sequence parallelism leaves partial (norm weights and biases,
  // pos_embed; see parallel::SequenceParallelGradients), once per optimizer step after the
  // backward of every micro-batch (and after the data-parallel reduction, if any). `grads`
  // holds elements [first, first + numel) of the flat gradient buffer: parameters().grads(),
  // or this rank's ZeRO shard of it. Every tp rank calls it; nothing happens without SP.
  void complete_sequence_parallel_gradients(Tensor grads, std::int64_t first = 0);

  // ---- pipeline stages (also the whole model when pp == 1) ----
  // Activation arenas for the micro-batches in flight on this stage (1F1B: pp - pp_rank).
  // Each slot keeps one micro-batch's activations from its forward_stage to its
  // backward_stage. Default 1.
  void set_pipeline_slots(int slots);
  int pipeline_slots() const { return static_cast<int>(slots_.size()); }
  // Which kernels attend in training and scoring on CUDA (`train.attention`); KV-cache
  // decoding always takes kiln's. Default kiln.
  void set_attention_library(ops::AttentionLibrary library);
  // What the training arenas keep per block (train.recompute, activations.hpp); call before
  // reserve_activations. Default none.
  void set_recompute(Recompute recompute);
  // Told before the forward reads parameters: needed(o) means the parameters at flat offsets
  // below o are about to be read (in ascending order: the embedding, each block, the head).
  // ZeRO's parameter gather of the previous step waits there, so it overlaps the layers before.
  using ParametersNeeded = std::function<void(std::int64_t below)>;
  void set_parameters_needed(ParametersNeeded needed);

  struct StageForward {
    // Last stage (with targets): the micro-batch's loss_sum [2] f64 = (sum, count), a tensor
    // valid until the slot's next forward (add it up with ops::add_to, read it once per step
    // with ops::read_loss_sum); else undefined.
    Tensor loss_sum;
    Tensor output;  // other stages: stage_activation_shape, valid until backward_stage of the slot
  };
  // Every stage gets the full micro-batch (its views must stay valid until backward_stage of
  // the slot). The first stage embeds batch.tokens; later stages take `input`
  // (stage_activation_shape), the previous stage's output (copied into the slot). The last
  // stage returns the loss (the same on every tp rank) and no output. Plans the slot's arena
  // when [B, T] changes. The batch comes checked and with its positions (MicroBatch,
  // BatchInputs): only shapes are checked.
  StageForward forward_stage(int slot, const Batch& batch, Tensor input);
  // Last stage: grad_output undefined, grad_scale as in backward(). Other stages: grad_output
  // (stage_activation_shape) from the next stage (grad_scale unused). Accumulates this stage's
  // parameter gradients and returns the gradient of the stage input (stage_activation_shape,
  // valid until the slot's next forward_stage), undefined on the first stage.
  //
  // `on_final`, when given, is told during the backward which parameter gradients are final:
  // on_final(o) means every gradient at flat offset >= o will not change any more (the flat
  // buffer holds the head, then the blocks from last to first, in reverse order of the
  // backward). Pass it to the last backward of an optimizer step only: earlier micro-batches'
  // gradients are added to. Called after the head, after each block, and with 0 at the end.
  using GradientsFinal = std::function<void(std::int64_t first_final_offset)>;
  Tensor backward_stage(int slot, Tensor grad_output, double grad_scale, const GradientsFinal& on_final = {});
  // The offsets backward_stage reports to on_final, ascending: where a data-parallel bucket
  // may end so that it becomes final as early as possible.
  std::vector<std::int64_t> gradient_final_offsets() const;

  // ---- the whole model (pp == 1): slot 0 ----
  // Runs the model; with targets, also the loss (summed over counted tokens, and their
  // count, so callers average over micro-batches and ranks), read back to the host. Plans the
  // arena on the first call and whenever [B, T] changes. Training steps use forward_stage,
  // which leaves the loss in a tensor. A host batch (with positions) is copied to the model's
  // device first, so eval and scoring call it the same way on the CPU and on CUDA.
  ops::LossSum forward(const Batch& batch);
  // Accumulates parameter gradients of (loss sum * grad_scale) from the last forward, which
  // must have had targets. Usually grad_scale = 1 / (counted tokens in the optimizer batch).
  // The logits buffer becomes dlogits: logits() is unavailable until the next forward.
  void backward(double grad_scale, const GradientsFinal& on_final = {});
  // [B, T, Vp/tp] logits of the last forward of slot 0 (last stage; this rank's vocabulary
  // shard under tp); columns >= vocab_size are padding (not part of the model: exclude them,
  // as cross-entropy and sampling do).
  Tensor logits() const;
  std::size_t activation_bytes() const;
  // Plans every slot's activation arena for [batch, seq] now (training arenas), so that the
  // memory is allocated, and reported, before the first step.
  void reserve_activations(std::int64_t batch, std::int64_t seq);

  // Incremental decoding: appends `tokens` [B, Tn] at positions cache.length .. + Tn - 1 of
  // each row (a prompt prefill, then Tn = 1 per generated token) and returns their logits
  // [B, Tn, Vp] (valid until the next call), on the model's device. Single process only
  // (tp = pp = 1). `tokens` are host ids, copied to the model's device here; they are not read:
  // the caller checks them (generate_ids, with model::BatchInputs).
  KvCache make_kv_cache(std::int64_t batch, std::int64_t capacity) const;
  Tensor forward_decode(KvCache& cache, Tensor tokens);

 private:
  // One micro-batch in flight: its activations and what backward needs of its batch.
  struct Slot {
    explicit Slot(memory::Allocator& allocator);
    Activations acts;
    Batch batch;
    memory::DeviceBuffer loss_sum_memory;
    Tensor loss_sum;  // [2] f64 (sum, count) of the slot's last loss forward
    bool logits_valid = false;
    bool backward_ready = false;
  };

  bool tensor_parallel() const { return placement_.tp_size > 1; }
  static parallel::SequenceScratch sequence_scratch(const Activations& acts);
  void check_sequence_split(std::int64_t seq) const;
  Tensor chunk_of_row(const Tensor& per_position, std::int64_t b) const;
  void add_positions(Tensor out, Tensor positions) const;
  void positions_backward(Tensor dout, Tensor positions);
  std::vector<ops::FlatRange> sequence_chunk_gradients() const;
  const Batch& on_model_device(const Batch& batch);
  Slot& slot_at(int slot, const char* caller);
  void check_tokens(const Tensor& tokens) const;
  void check_batch(const Batch& batch) const;
  void embed(Tensor out, Tensor tokens, Tensor positions,
             const parallel::SequenceScratch& scratch = {}) const;
  void attention_input(const BlockTensors& w, Tensor x, LayerActivations& a, Tensor positions,
                       const parallel::SequenceScratch& scratch) const;
  void attention_core(LayerActivations& a, Tensor k, Tensor v, Tensor doc_ids,
                      const ops::AttentionOptions& options) const;
  ops::AttentionOptions batch_attention(const Batch& batch) const;
  // The training attention of one block: attention_core, or ring attention under cp.
  void attend(LayerActivations& a, Tensor q, Tensor k, Tensor v, const Batch& batch);
  void attend_backward(Tensor dq, Tensor dk, Tensor dv, Tensor d_attn, const LayerActivations& a, Tensor q, Tensor k,
                       Tensor v, const Batch& batch);
  const parallel::ContextChunks& context_of(const Batch& batch) const;
  void mlp_activation(LayerActivations& a) const;
  // Gives block `layer` of the slot back what recomputation dropped (before its backward).
  void recompute_block(Slot& slot, std::size_t layer);
  void attention_output_and_mlp(const BlockTensors& w, Tensor x, const Activations& acts,
                                LayerActivations& a, Tensor y) const;
  void head_forward(Activations& acts, Tensor x) const;
  void loss_forward(Activations& acts, Tensor loss_sum, const Batch& batch) const;
  void head_backward(Slot& slot, double grad_scale);
  void norm_forward(Tensor y, Tensor mean, Tensor rstd, Tensor x, Tensor w, Tensor b) const;
  void norm_backward(Tensor dx, Tensor dw, Tensor db, Tensor dy, Tensor x, Tensor w, Tensor mean,
                     Tensor rstd, ops::Accumulate accumulate) const;
  void block_backward(Slot& slot, std::size_t layer);
  void mlp_backward(const BlockTensors& w, const BlockTensors& g, const LayerActivations& a,
                    Activations& acts);
  static Tensor block_input(const Activations& acts, std::size_t layer);
  std::int64_t block_offset(std::size_t local_layer) const;
  std::int64_t head_offset() const;
  // Where the parameters of local block `l` end (the next block, the head, or the buffer's end).
  std::int64_t block_end(std::size_t local_layer) const;
  void need_parameters_below(std::int64_t offset) const;

  ModelConfig config_;
  ParallelPlacement placement_;
  StageDims dims_;                // this rank's widths and blocks
  ops::AttentionLibrary attention_library_ = ops::AttentionLibrary::kiln;
  ParametersNeeded parameters_needed_;
  parallel::RingAttention ring_attention_;  // active under context parallelism
  // Tensor-parallel layers (parallel/tensor_parallel.hpp); the serial ops when tp = 1.
  parallel::ColumnParallelLinear column_parallel_;
  parallel::RowParallelLinear row_parallel_;
  parallel::VocabParallelEmbedding vocab_embedding_;
  parallel::VocabParallelCrossEntropy vocab_cross_entropy_;
  ParameterStore params_;
  ModelTensors weights_;
  ModelTensors grads_;
  parallel::SequenceParallelGradients sequence_gradients_;  // empty without SP
  std::vector<Slot> slots_;
  Activations decode_;
  DeviceBatch host_inputs_;  // forward()'s and forward_decode()'s host inputs on the model's device
};

}  // namespace kiln::model
