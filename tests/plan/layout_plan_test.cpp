// kiln plan's estimator: its memory per rank is the trainer's own buffers (parameters as the
// registry counts them per rank, ZeRO dividing the optimizer state, sequence parallelism taking
// out what the split tensors held), the layouts it proposes are those kiln train accepts, cp
// and recomputation do what cp_and_recompute.hpp says, and planning a model far larger than
// the machine commits no memory. Expected bytes are worked out here from the shapes.
#include "trainer/plan/layout_plan.hpp"
#include "trainer/plan/step_time.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "trainer/config/parallel_layout.hpp"
#include "trainer/config/recipe.hpp"
#include "trainer/core/error.hpp"
#include "trainer/model/parameters.hpp"
#include "trainer/plan/communication_volume.hpp"

namespace kiln::plan {
namespace {

using memory::MemoryCategory;

constexpr std::uint64_t kF32 = 4;

std::uint64_t aligned(std::uint64_t bytes) { return (bytes + 63) / 64 * 64; }

// gpt2: C 64, 4 blocks, 4 heads, T 64, vocab 300; 8 sequences a step, micro-batches of 2.
RecipeSource small_recipe(const std::string& model = "family: gpt2, d_model: 64, n_layers: 4, n_heads: 4") {
  const std::string yaml = "model: {" + model + R"(, max_seq_len: 64, vocab_size: 300}
data: {tokenizer: tok.json, train: train.h5}
train: {steps: 1, seq_len: 64, batch_size: 8, micro_batch_size: 2, device: cpu}
optim: {lr: 1.0e-3}
)";
  return {yaml, "small.yaml", {}};
}

config::Recipe base_of(const RecipeSource& source) {
  return config::recipe_from_yaml_text(source.text, source.name, source.overrides);
}

LayoutEstimate estimate(const RecipeSource& source, const PlanLayout& layout) {
  const LayoutChecker::Checked checked = LayoutChecker(source, 0).check(layout);
  return estimate_layout(checked.recipe, checked.layout, PlanAssumptions{});
}

PlanLayout layout_of(int dp, int tp, int pp, int zero = 0) {
  PlanLayout layout;
  layout.dp = dp;
  layout.tp = tp;
  layout.pp = pp;
  layout.zero = zero;
  layout.micro_batch_size = 2;
  return layout;
}

TEST(LayoutPlan, ParameterBytesAreTheRegistrysCountPerRank) {
  for (const char* family :
       {"family: gpt2, n_heads: 4", "family: llama, n_heads: 8, n_kv_heads: 4, tie_embeddings: false"}) {
    const RecipeSource source = small_recipe(std::string(family) + ", d_model: 64, n_layers: 4");
    const config::Recipe base = base_of(source);
    for (const auto& [tp, pp] : {std::pair{1, 1}, {2, 1}, {1, 2}, {2, 2}, {4, 1}, {1, 4}}) {
      const LayoutEstimate plan = estimate(source, layout_of(1, tp, pp));
      ASSERT_EQ(plan.stages.size(), static_cast<std::size_t>(pp));
      for (const StageEstimate& stage : plan.stages) {
        model::ParallelPlacement placement;
        placement.tp_size = tp;
        placement.pp_size = pp;
        placement.pp_rank = stage.stage;
        const model::ParameterStore store(model::from_recipe(base.model, tp), DType::F32, placement);
        const std::uint64_t bytes = aligned(static_cast<std::uint64_t>(store.numel()) * kF32);
        SCOPED_TRACE(fmt::format("{} tp {} pp {} stage {}", family, tp, pp, stage.stage));
        EXPECT_EQ(stage.parameters, store.numel());
        EXPECT_EQ(stage.memory[MemoryCategory::parameters], bytes);
        EXPECT_EQ(stage.memory[MemoryCategory::gradients], bytes);
        EXPECT_EQ(stage.memory[MemoryCategory::optimizer_state], 2 * bytes);  // AdamW's two moments
      }
    }
  }
}

TEST(LayoutPlan, ZeroShardsTheOptimizerStateOverDataParallelRanks) {
  const LayoutEstimate replicated = estimate(small_recipe(), layout_of(4, 1, 1, 0));
  const LayoutEstimate sharded = estimate(small_recipe(), layout_of(4, 1, 1, 1));
  const auto numel = static_cast<std::uint64_t>(replicated.stages[0].parameters);
  const std::uint64_t shard = (numel + 3) / 4;
  EXPECT_EQ(replicated.memory[MemoryCategory::optimizer_state], 2 * aligned(numel * kF32));
  EXPECT_EQ(sharded.memory[MemoryCategory::optimizer_state], 2 * aligned(shard * kF32));
  EXPECT_EQ(replicated.memory[MemoryCategory::communication], 0u);
  EXPECT_EQ(sharded.memory[MemoryCategory::communication], aligned(shard * kF32));  // the reduced shard
  // The same bytes move either way in fp32: reduce-scatter + all-gather = all-reduce.
  EXPECT_DOUBLE_EQ(sharded.traffic.dp, replicated.traffic.dp);
  EXPECT_DOUBLE_EQ(replicated.traffic.dp, 2.0 * 3 / 4 * static_cast<double>(numel * kF32));
}

TEST(LayoutPlan, SequenceParallelismTakesOutWhatTheSplitTensorsHeld) {
  PlanLayout split = layout_of(1, 2, 1);
  const LayoutEstimate whole = estimate(small_recipe(), split);
  split.sequence_parallel = true;
  const LayoutEstimate chunked = estimate(small_recipe(), split);
  // B 2, T 64, C 64: what goes from [B, T, ...] to [B, T/2, ...] (activations.hpp): per block
  // attn_norm, mid, mlp_norm, out and 4 LayerNorm statistics; embedded, final_norm, d_residual,
  // d_norm, 2 final statistics and zero_ids; in: the sequence collectives' two [B, T, C].
  const std::uint64_t N = 2 * 64, C = 64;
  const auto halved = [](std::uint64_t bytes) { return aligned(bytes) - aligned(bytes / 2); };
  const std::uint64_t per_block = 4 * halved(N * C * kF32) + 4 * halved(N * kF32);
  const std::uint64_t expected =
      4 * per_block + 4 * halved(N * C * kF32) + 3 * halved(N * kF32) - 2 * aligned(N * C * kF32);
  EXPECT_EQ(whole.memory[MemoryCategory::activations] - chunked.memory[MemoryCategory::activations], expected);
  EXPECT_GT(chunked.memory[MemoryCategory::communication], 0u);  // the packed partial gradients
}

TEST(LayoutPlan, ProposesOnlyLayoutsKilnTrainAccepts) {
  const RecipeSource source = small_recipe("family: gpt2, d_model: 64, n_layers: 2, n_heads: 4");
  const LayoutChecker checker(source, 0);
  const Plan plan = plan_layouts(checker, base_of(source), {8, 8, false}, PlanAssumptions{});
  ASSERT_FALSE(plan.layouts.empty());
  EXPECT_GT(plan.refused, 0);  // tp 8 (4 heads), pp 4 and 8 (2 layers), ...
  for (const LayoutEstimate& estimate : plan.layouts) {
    const PlanLayout& l = estimate.layout;
    SCOPED_TRACE(describe(l));
    EXPECT_EQ(l.gpus(), 8);
    EXPECT_LE(l.tp, 4);
    EXPECT_LE(l.pp, 2);
    EXPECT_TRUE(l.zero == 0 || l.dp > 1);
    EXPECT_TRUE(!l.sequence_parallel || l.tp > 1);
    EXPECT_EQ(l.cp, 1);
    EXPECT_EQ(l.recompute, Recompute::none);
    const config::ParallelLayout resolved = config::resolve_layout(checker.check(l).recipe, l.dp * l.tp * l.pp);
    EXPECT_EQ(resolved.micro_batches, l.micro_batches);
  }
  for (std::size_t i = 1; i < plan.layouts.size(); ++i) {  // all fit: ordered by step time
    EXPECT_TRUE(plan.layouts[i].fits());
    EXPECT_LE(plan.layouts[i - 1].time.step_s, plan.layouts[i].time.step_s * (1 + 1e-9));
  }
  EXPECT_THROW(checker.check(layout_of(8, 3, 1)), Error);  // tp 3 does not divide the heads
}

TEST(LayoutPlan, ContextParallelismPlansTheRanksShareOfTheSequence) {
  PlanLayout layout = layout_of(1, 1, 1);
  layout.cp = 2;
  const LayoutEstimate split = estimate(small_recipe(), layout);
  RecipeSource half = small_recipe();
  half.overrides = {"train.seq_len=32"};
  const LayoutEstimate half_sequence = estimate(half, layout_of(1, 1, 1));
  EXPECT_EQ(split.memory[MemoryCategory::activations], half_sequence.memory[MemoryCategory::activations]);
  // RingAttention's scratch: two K|V and two dK|dV blocks of [2, B, T/cp, Hkv Dh], one chunk's
  // partial results (out and dq [c, Hq Dh], dk and dv [c, Hkv Dh], two lse [Hq c]) and the dq
  // sum [B, T/cp, Hq Dh]; c = T / 2cp = 16. The ring sends 3 x (cp-1)/cp x B T 2 Hkv Dh per block.
  const std::uint64_t kv_block = 2 * 32 * 2 * 64 * kF32;
  const std::uint64_t parts = 4 * aligned(16 * 64 * kF32) + 2 * aligned(4 * 16 * kF32) + aligned(2 * 32 * 64 * kF32);
  EXPECT_EQ(split.memory[MemoryCategory::communication], 4 * kv_block + parts);
  EXPECT_DOUBLE_EQ(split.traffic.cp, 4.0 /*micro-batches*/ * 4 /*blocks*/ * 3 * 0.5 * (2 * 64 * 2 * 64 * 4));
}

TEST(LayoutPlan, RecomputationKeepsOneBlocksWorthOfWhatItDrops) {
  PlanLayout layout = layout_of(1, 1, 1);
  const LayoutEstimate none = estimate(small_recipe(), layout);
  layout.recompute = Recompute::selective;
  const LayoutEstimate selective = estimate(small_recipe(), layout);
  layout.recompute = Recompute::full;
  const LayoutEstimate full = estimate(small_recipe(), layout);
  // B 2, T 64, C 64, F 256, gpt2 (LayerNorm), as activations.hpp: selective drops attn_norm,
  // mlp_norm and mlp_act; full keeps only out. One block's worth stays (the working block), so
  // 3 of the 4 blocks' worth goes.
  const std::uint64_t N = 2 * 64, C = 64, F = 256;
  const std::uint64_t selective_block = 2 * aligned(N * C * kF32) + aligned(N * F * kF32);
  const std::uint64_t full_block = 4 * aligned(N * C * kF32) + 4 * aligned(N * kF32) + aligned(N * 3 * C * kF32) +
                                   aligned(N * 4 * kF32) + 2 * aligned(N * F * kF32);
  const auto activations = [](const LayoutEstimate& e) { return e.memory[MemoryCategory::activations]; };
  EXPECT_EQ(activations(none) - activations(selective), 3 * selective_block);
  EXPECT_EQ(activations(none) - activations(full), 3 * full_block);
  EXPECT_EQ(selective.time.compute_s, none.time.compute_s);  // norms and an activation: no GEMM
  EXPECT_GT(full.time.compute_s, none.time.compute_s);       // each block's forward again
}

TEST(StepTime, GroupsCrossNodesWhereTheirRanksDo) {
  const auto placed = [](int dp, int tp, int pp) { return place_groups(layout_of(dp, tp, pp), 8); };
  EXPECT_TRUE(placed(2, 8, 1).tp_inside_node);
  EXPECT_FALSE(placed(2, 8, 1).dp_inside_node);  // ranks 0 and 8
  EXPECT_TRUE(placed(4, 2, 2).dp_inside_node);   // tp x dp = 8: a node per stage
  EXPECT_FALSE(placed(4, 2, 2).pp_inside_node);
  EXPECT_TRUE(placed(2, 2, 2).pp_inside_node);   // 8 ranks in all
}

TEST(StepTime, OneForwardOneBackwardRunsMicroBatchesPlusTheBubble) {
  model::ModelConfig config = model::from_recipe(base_of(small_recipe()).model, 1);
  PlanAssumptions assumptions;
  assumptions.efficiency = 1.0;
  assumptions.peak_fp32_tflops = 1e-6;  // 1 MFLOP/s
  PlanLayout layout = layout_of(1, 1, 2);
  layout.micro_batches = 4;
  const ModelFlops flops = model_flops(config, 64);
  StageWork first{2, false, {}}, last{2, true, {}};
  first.traffic.per_micro_batch.pp = 100;  // bytes; 8 GPUs per node: all inside (NVLink)
  last.traffic.per_step.dp = 3;
  const StepTime time = estimate_step_time(layout, config, 64, false, {first, last}, assumptions);
  const double compute_last = (2 * flops.block + flops.head) * 2 * 64 / 1e6;  // B 2, T 64
  const double slowest = compute_last;  // the first stage's 100 bytes over NVLink take far less
  ASSERT_GT(slowest, 2 * flops.block * 2 * 64 / 1e6 + 100 / (assumptions.nvlink_gbps * 1e9));
  EXPECT_NEAR(time.compute_s, 4 * compute_last, 1e-9 * time.compute_s);
  EXPECT_NEAR(time.bubble_s, slowest, 1e-9 * slowest);
  EXPECT_NEAR(time.step_s, 5 * slowest + 3 / (assumptions.nvlink_gbps * 1e9), 1e-9 * time.step_s);
}

std::uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
}

TEST(LayoutPlan, PlanningAModelLargerThanTheMachineCommitsNoMemory) {
  const std::string yaml = R"(model: {family: llama, d_model: 4096, n_layers: 32, n_heads: 32, n_kv_heads: 8,
  d_ff: 14336, max_seq_len: 8192, vocab_size: 128256, tie_embeddings: false}
data: {tokenizer: tok.json, train: train.h5}
train: {steps: 1, seq_len: 8192, batch_size: 8, micro_batch_size: 1, device: cuda}
optim: {lr: 1.0e-3}
)";
  const std::uint64_t before = resident_bytes();
  PlanLayout layout = layout_of(8, 1, 1, 1);
  layout.micro_batch_size = 1;
  const LayoutEstimate plan = estimate({yaml, "llama8b.yaml", {}}, layout);
  EXPECT_LT(resident_bytes() - before, std::uint64_t{256} << 20);
  // 8.03e9 bf16 values (the working copy under bf16) and f32 gradients.
  EXPECT_EQ(plan.stages[0].parameters, 8'030'261'248);
  EXPECT_EQ(plan.memory[MemoryCategory::parameters], aligned(8'030'261'248ull * 2));
  EXPECT_EQ(plan.memory[MemoryCategory::gradients], aligned(8'030'261'248ull * 4));
  EXPECT_TRUE(plan.bf16);
  EXPECT_FALSE(plan.fits());  // 48 GB of values and gradients, 12 of optimizer, ~70 of activations
}

}  // namespace
}  // namespace kiln::plan
