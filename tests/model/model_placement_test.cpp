// The model under a ParallelPlacement, in one process: layout validation, pipeline layer
// ranges, the shards a tensor-parallel rank registers (shapes, offsets, real rows), shard
// initialisation equal to slices of the serial model, and a pipeline run stage by stage
// (no communication needed for tp = 1) against the whole model.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>

#include "parallel/communicator.hpp"
#include "tests/model/model_testing.hpp"
#include "trainer/core/error.hpp"
#include "trainer/model/init.hpp"

namespace kiln::model {
namespace {

using testing::OwnedBatch;

ParallelPlacement tp_placement(int tp_rank, int tp_size) {
  ParallelPlacement p;
  p.tp_rank = tp_rank;
  p.tp_size = tp_size;
  return p;
}

ParallelPlacement pp_placement(int pp_rank, int pp_size) {
  ParallelPlacement p;
  p.pp_rank = pp_rank;
  p.pp_size = pp_size;
  return p;
}

std::string placement_error(const ModelConfig& config, const ParallelPlacement& placement) {
  try {
    config.resolved().validate_placement(placement);
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

bool mentions(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ModelPlacement, ValidationNamesTheFieldAndTheFix) {
  EXPECT_EQ(placement_error(testing::tiny_llama(), tp_placement(1, 2)), "");
  EXPECT_EQ(placement_error(testing::tiny_gpt2(), tp_placement(3, 4)), "");

  const std::string heads = placement_error(testing::tiny_gpt2(), tp_placement(0, 3));
  EXPECT_TRUE(mentions(heads, "n_heads = 4 is not divisible by tp = 3")) << heads;
  const std::string kv = placement_error(testing::tiny_llama(), tp_placement(0, 4));
  EXPECT_TRUE(mentions(kv, "n_kv_heads = 2 is not divisible by tp = 4")) << kv;
  EXPECT_TRUE(mentions(kv, "pick a tp that divides n_kv_heads")) << kv;

  ModelConfig wide = testing::tiny_llama();
  wide.d_ff = 25;
  const std::string ff = placement_error(wide, tp_placement(0, 2));
  EXPECT_TRUE(mentions(ff, "d_ff = 25 is not divisible by tp = 2")) << ff;

  ModelConfig unpadded = testing::tiny_gpt2();
  unpadded.vocab_pad_multiple = 1;  // 37 rows: cannot be split in two
  const std::string vocab = placement_error(unpadded, tp_placement(0, 2));
  EXPECT_TRUE(mentions(vocab, "padded vocabulary of 37 rows is not divisible by tp = 2")) << vocab;
  EXPECT_TRUE(mentions(vocab, "model.tp = 2")) << vocab;
  unpadded.tp = 2;  // padded for tp: 38 rows
  EXPECT_EQ(placement_error(unpadded, tp_placement(1, 2)), "");

  const std::string layers = placement_error(testing::tiny_gpt2(), pp_placement(0, 3));
  EXPECT_TRUE(mentions(layers, "n_layers = 2 is fewer than pp = 3")) << layers;
  EXPECT_TRUE(mentions(layers, "use pp <= 2")) << layers;

  EXPECT_TRUE(mentions(placement_error(testing::tiny_gpt2(), tp_placement(2, 2)), "tp rank 2"));
  EXPECT_TRUE(mentions(placement_error(testing::tiny_gpt2(), pp_placement(-1, 2)), "stage -1"));

  // A communicator that disagrees with the placement (a single process has a group of one).
  const auto world = parallel::world_communicator();
  ParallelPlacement mismatched = tp_placement(0, 2);
  mismatched.tp = world.get();
  EXPECT_TRUE(mentions(placement_error(testing::tiny_gpt2(), mismatched), "the tp communicator"));

  // The store and the model refuse the same layouts.
  EXPECT_THROW(ParameterStore(testing::tiny_llama(), DType::F32, tp_placement(0, 4)), Error);
  EXPECT_THROW(Transformer(testing::tiny_gpt2(), DType::F32, pp_placement(0, 3)), Error);
}

TEST(ModelPlacement, StageLayersAreContiguousAndBalanced) {
  EXPECT_EQ(stage_layers(12, 1, 0), (LayerRange{0, 12}));
  EXPECT_EQ(stage_layers(5, 2, 0), (LayerRange{0, 3}));  // no middle stage: the first
  EXPECT_EQ(stage_layers(5, 2, 1), (LayerRange{3, 5}));
  // 7 over 4: the two middle stages get an extra layer first, then the first stage.
  EXPECT_EQ(stage_layers(7, 4, 0), (LayerRange{0, 2}));
  EXPECT_EQ(stage_layers(7, 4, 1), (LayerRange{2, 4}));
  EXPECT_EQ(stage_layers(7, 4, 2), (LayerRange{4, 6}));
  EXPECT_EQ(stage_layers(7, 4, 3), (LayerRange{6, 7}));
  // 6 over 4: only the middle stages get one.
  EXPECT_EQ(stage_layers(6, 4, 0).count(), 1);
  EXPECT_EQ(stage_layers(6, 4, 1).count(), 2);
  EXPECT_EQ(stage_layers(6, 4, 2).count(), 2);
  EXPECT_EQ(stage_layers(6, 4, 3).count(), 1);
  for (std::int64_t n = 1; n <= 13; ++n) {
    for (int pp = 1; pp <= n && pp <= 8; ++pp) {
      std::int64_t next = 0, smallest = n, largest = 0;
      for (int stage = 0; stage < pp; ++stage) {
        const LayerRange range = stage_layers(n, pp, stage);
        ASSERT_EQ(range.first, next) << n << " layers, pp " << pp << ", stage " << stage;
        ASSERT_GE(range.count(), 1);
        smallest = std::min(smallest, range.count());
        largest = std::max(largest, range.count());
        next = range.last;
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(largest - smallest, 1) << n << " layers, pp " << pp;
      EXPECT_EQ(stage_layers(n, pp, pp - 1).count(), n / pp) << "the last stage carries the head";
    }
  }
  EXPECT_THROW(stage_layers(3, 4, 0), Error);
  EXPECT_THROW(stage_layers(4, 2, 2), Error);
}

TEST(ModelPlacement, TensorParallelShardsOfLlama) {
  const ModelConfig c = testing::tiny_llama();  // vocab 37 -> 64, C 16, 4 q / 2 kv heads of 4
  for (int rank = 0; rank < 2; ++rank) {
    const ParameterStore store(c, DType::F32, tp_placement(rank, 2));
    const ParameterInfo& q = store.info("blocks.1.attn.q.weight");
    EXPECT_EQ(q.shape, (Shape{8, 16}));
    EXPECT_EQ(q.global_shape, (Shape{16, 16}));
    EXPECT_EQ(q.global_offset, (Shape{8 * rank, 0}));
    EXPECT_EQ(q.valid_rows, 8);
    EXPECT_EQ(q.export_shape(), (Shape{16, 16}));
    const ParameterInfo& k = store.info("blocks.1.attn.k.weight");
    EXPECT_EQ(k.shape, (Shape{4, 16}));
    EXPECT_EQ(k.global_offset, (Shape{4 * rank, 0}));
    EXPECT_EQ(store.fused_value("blocks.1.attn.qkv.weight").shape, (Shape{16, 16}));  // 8|4|4
    const ParameterInfo& out = store.info("blocks.0.attn.out.weight");
    EXPECT_EQ(out.shape, (Shape{16, 8}));
    EXPECT_EQ(out.global_offset, (Shape{0, 8 * rank}));
    EXPECT_EQ(out.valid_rows, 16);
    EXPECT_EQ(store.info("blocks.0.mlp.up.weight").global_offset, (Shape{12 * rank, 0}));
    EXPECT_EQ(store.fused_value("blocks.0.mlp.gate_up.weight").shape, (Shape{24, 16}));
    const ParameterInfo& down = store.info("blocks.0.mlp.down.weight");
    EXPECT_EQ(down.shape, (Shape{16, 12}));
    EXPECT_EQ(down.global_offset, (Shape{0, 12 * rank}));
    const ParameterInfo& norm = store.info("final_norm.weight");
    EXPECT_EQ(norm.shape, (Shape{16}));
    EXPECT_EQ(norm.global_offset, (Shape{0}));
    EXPECT_FALSE(norm.is_sharded());
    // Vocabulary 37 padded to 64: rank 0 holds 32 real rows, rank 1 rows 32..63 of which 5 are
    // real (ids 32..36).
    for (const char* table : {"embed.weight", "lm_head.weight"}) {
      const ParameterInfo& info = store.info(table);
      EXPECT_EQ(info.shape, (Shape{32, 16})) << table;
      EXPECT_EQ(info.global_shape, (Shape{64, 16})) << table;
      EXPECT_EQ(info.global_offset, (Shape{32 * rank, 0})) << table;
      EXPECT_EQ(info.valid_rows, rank == 0 ? 32 : 5) << table;
      EXPECT_EQ(info.export_shape(), (Shape{37, 16})) << table;
    }
  }
}

TEST(ModelPlacement, TensorParallelShardsOfGpt2WithAnAllPaddingShard) {
  ModelConfig c = testing::tiny_gpt2();
  c.vocab_pad_multiple = 16;
  c.tp = 4;  // 37 -> 64 rows, 16 per rank: 16, 16, 5 and 0 real
  c = c.resolved();
  const std::int64_t real_rows[] = {16, 16, 5, 0};
  for (int rank = 0; rank < 4; ++rank) {
    const ParameterStore store(c, DType::F32, tp_placement(rank, 4));
    const ParameterInfo& embed = store.info("embed.weight");
    EXPECT_EQ(embed.shape, (Shape{16, 16}));
    EXPECT_EQ(embed.global_offset, (Shape{16 * rank, 0}));
    EXPECT_EQ(embed.valid_rows, real_rows[rank]);
    const ParameterInfo& q_bias = store.info("blocks.0.attn.q.bias");
    EXPECT_EQ(q_bias.shape, (Shape{4}));
    EXPECT_EQ(q_bias.global_shape, (Shape{16}));
    EXPECT_EQ(q_bias.global_offset, (Shape{4 * rank}));
    EXPECT_EQ(store.fused_value("blocks.0.attn.qkv.bias").shape, (Shape{12}));
    EXPECT_EQ(store.info("blocks.0.mlp.up.bias").global_offset, (Shape{8 * rank}));
    EXPECT_EQ(store.info("blocks.0.attn.out.bias").split, TpSplit::replicated);
    EXPECT_EQ(store.info("blocks.0.attn.out.bias").shape, (Shape{16}));
    EXPECT_EQ(store.info("pos_embed.weight").shape, (Shape{16, 16}));
  }
}

// Over the tp ranks, the shards of every parameter tile its unpadded global tensor exactly
// once: what checkpoints rely on.
TEST(ModelPlacement, ShardsTileEveryParameterOnce) {
  ModelConfig gpt2 = testing::tiny_gpt2();
  gpt2.vocab_pad_multiple = 16;
  for (const auto& [config, tp] :
       std::vector<std::pair<ModelConfig, int>>{{testing::tiny_llama(), 2}, {gpt2, 2}, {gpt2, 4}}) {
    const ParameterStore serial(config, DType::F32);
    std::map<std::string, std::set<std::vector<std::int64_t>>> covered;
    for (int rank = 0; rank < tp; ++rank) {
      const ParameterStore shard(config, DType::F32, tp_placement(rank, tp));
      ASSERT_EQ(shard.size(), serial.size());
      for (const ParameterInfo& info : shard.infos()) {
        EXPECT_EQ(info.export_shape(), serial.info(info.name).export_shape()) << info.name;
        EXPECT_EQ(info.split == TpSplit::replicated, !info.is_sharded()) << info.name;
        for (std::int64_t r = 0; r < info.valid_rows; ++r) {
          const std::int64_t cols = info.shape.rank() == 2 ? info.shape[1] : 1;
          for (std::int64_t col = 0; col < cols; ++col) {
            std::vector<std::int64_t> at{info.global_offset[0] + r};
            if (info.shape.rank() == 2) at.push_back(info.global_offset[1] + col);
            const bool fresh = covered[info.name].insert(at).second;
            if (info.split != TpSplit::replicated) {
              ASSERT_TRUE(fresh) << info.name;
            }
          }
        }
      }
    }
    for (const ParameterInfo& info : serial.infos())
      EXPECT_EQ(static_cast<std::int64_t>(covered[info.name].size()), info.export_shape().numel())
          << info.name << " tp " << tp;
  }
}

TEST(ModelPlacement, PipelineStagesRegisterTheirOwnParameters) {
  ModelConfig gpt2 = testing::tiny_gpt2();  // tied
  gpt2.n_layers = 3;
  const ParameterStore first(gpt2, DType::F32, pp_placement(0, 2));
  const ParameterStore last(gpt2, DType::F32, pp_placement(1, 2));
  EXPECT_EQ(first.layers(), (LayerRange{0, 2}));
  EXPECT_TRUE(first.contains("embed.weight"));
  EXPECT_TRUE(first.contains("pos_embed.weight"));
  EXPECT_TRUE(first.contains("blocks.1.mlp.down.bias"));
  EXPECT_FALSE(first.contains("blocks.2.attn.q.weight"));
  EXPECT_FALSE(first.contains("final_norm.weight"));
  EXPECT_FALSE(first.info("embed.weight").tied_copy);
  EXPECT_EQ(last.infos().front().name, "blocks.2.attn_norm.weight");
  EXPECT_FALSE(last.contains("blocks.1.attn.q.weight"));
  EXPECT_FALSE(last.contains("pos_embed.weight"));
  EXPECT_TRUE(last.contains("final_norm.bias"));
  // The tied head: the last stage holds embed.weight too, marked as the copy.
  ASSERT_TRUE(last.contains("embed.weight"));
  EXPECT_TRUE(last.info("embed.weight").tied_copy);
  EXPECT_EQ(last.info("embed.weight").shape, first.info("embed.weight").shape);
  EXPECT_EQ(last.infos().back().name, "embed.weight");

  ParameterStore middle(testing::tiny_llama(), DType::F32, pp_placement(0, 1));
  EXPECT_FALSE(middle.info("embed.weight").tied_copy);
  ModelConfig llama = testing::tiny_llama();  // untied
  llama.n_layers = 4;
  const ParameterStore stage1(llama, DType::F32, pp_placement(1, 3));
  const ParameterStore stage2(llama, DType::F32, pp_placement(2, 3));
  EXPECT_EQ(stage1.layers(), (LayerRange{1, 3}));  // the middle stage gets the extra block
  EXPECT_EQ(stage1.size(), 18u);                   // two llama blocks, nothing else
  EXPECT_FALSE(stage2.contains("embed.weight"));
  EXPECT_TRUE(stage2.contains("lm_head.weight"));
  EXPECT_TRUE(stage2.contains("blocks.3.mlp.gate.weight"));
}

// Every shard (tp 2 and 4, pipeline stages, both) starts as the matching slice of the serial
// initialisation; padded rows are zero.
TEST(ModelPlacement, ShardsInitialiseAsSlicesOfTheSerialModel) {
  ModelConfig gpt2 = testing::tiny_gpt2();
  gpt2.vocab_pad_multiple = 16;
  gpt2.n_layers = 3;
  ModelConfig llama = testing::tiny_llama();
  llama.n_layers = 3;
  std::vector<std::pair<ModelConfig, ParallelPlacement>> layouts;
  for (int rank = 0; rank < 2; ++rank) {
    layouts.push_back({llama, tp_placement(rank, 2)});
    layouts.push_back({gpt2, tp_placement(rank, 2)});
    layouts.push_back({llama, pp_placement(rank, 2)});
    layouts.push_back({gpt2, pp_placement(rank, 2)});
  }
  for (int rank = 0; rank < 4; ++rank) layouts.push_back({gpt2, tp_placement(rank, 4)});
  ParallelPlacement both = tp_placement(1, 2);
  both.pp_rank = 1;
  both.pp_size = 2;
  layouts.push_back({gpt2, both});
  layouts.push_back({llama, both});

  for (const auto& [config, placement] : layouts) {
    ModelConfig padded = config;
    padded.tp = placement.tp_size;
    ParameterStore serial(config, DType::F32);
    init_parameters(serial, config.resolved(), 21);
    ParameterStore shard(padded, DType::F32, placement);
    init_parameters(shard, padded.resolved(), 21);
    for (std::size_t i = 0; i < shard.size(); ++i) {
      const ParameterInfo& info = shard.infos()[i];
      const std::string where =
          fmt::format("{} {} tp {}/{} pp {}/{}", family_name(config.family), info.name,
                      placement.tp_rank, placement.tp_size, placement.pp_rank, placement.pp_size);
      EXPECT_EQ(testing::to_vector(testing::real_part(shard.value(i), info)),
                testing::to_vector(testing::serial_region(serial.value(info.name), info)))
          << where;
      const std::int64_t padding = info.shape[0] - info.valid_rows;
      for (double x : testing::to_vector(shard.value(i).narrow(0, info.valid_rows, padding)))
        ASSERT_EQ(x, 0.0) << where;
    }
  }
}

// Without tensor parallelism a pipeline needs no communication: run the stages of one process
// by hand (two micro-batches in flight, all forwards then all backwards) and compare with the
// whole model: losses, and every stage's gradients (the tied embedding's two halves summed).
TEST(ModelPlacement, PipelineStagesComputeTheWholeModel) {
  for (ModelConfig config : {testing::tiny_gpt2(), testing::tiny_llama()}) {
    config.n_layers = 3;
    for (const int pp : {2, 3}) {
      std::vector<OwnedBatch> batches;
      batches.push_back(testing::packed_batch(config.vocab_size, 31));
      batches.push_back(testing::packed_batch(config.vocab_size, 32, true, false));
      Transformer serial(config, DType::F64);
      testing::randomize_parameters(serial, 33, 0.3);
      serial.zero_grads();
      std::vector<ops::LossSum> serial_losses;
      std::int64_t counted = 0;
      for (const OwnedBatch& b : batches) {
        serial_losses.push_back(serial.forward(b.view()));
        counted += serial_losses.back().count;
      }
      for (const OwnedBatch& b : batches) {
        serial.forward(b.view());
        serial.backward(1.0 / static_cast<double>(counted));
      }

      std::vector<Transformer> stages;
      stages.reserve(static_cast<std::size_t>(pp));
      for (int stage = 0; stage < pp; ++stage) {
        stages.emplace_back(config, DType::F64, pp_placement(stage, pp));
        Transformer& model = stages.back();
        model.set_pipeline_slots(2);
        for (const ParameterInfo& info : model.parameters().infos())
          ops::copy(model.parameters().value(info.name), serial.parameters().value(info.name));
        model.zero_grads();
      }
      for (int mb = 0; mb < 2; ++mb) {
        Tensor activation;
        for (int stage = 0; stage < pp; ++stage) {
          const Transformer::StageForward out =
              stages[stage].forward_stage(mb, batches[mb].view(), activation);
          activation = out.output;
          if (stage == pp - 1) {
            EXPECT_FALSE(out.output.defined());
            const ops::LossSum loss = ops::read_loss_sum(out.loss_sum);
            EXPECT_EQ(loss.count, serial_losses[mb].count);
            EXPECT_NEAR(loss.sum, serial_losses[mb].sum, 1e-12 * serial_losses[mb].sum);
          } else {
            EXPECT_FALSE(out.loss_sum.defined());
          }
        }
      }
      for (int mb = 0; mb < 2; ++mb) {
        Tensor gradient;
        for (int stage = pp - 1; stage >= 0; --stage)
          gradient = stages[stage].backward_stage(mb, gradient, 1.0 / static_cast<double>(counted));
        EXPECT_FALSE(gradient.defined());  // nothing flows out of the first stage
      }
      for (int stage = 0; stage < pp; ++stage) {
        const ParameterStore& store = stages[stage].parameters();
        for (const ParameterInfo& info : store.infos()) {
          std::vector<double> got = testing::to_vector(store.grad(info.name));
          if (info.name == "embed.weight" && config.tie_embeddings) {
            // First and last stage each hold one part; the trainer sums them.
            const ParameterStore& other = stages[info.tied_copy ? 0 : pp - 1].parameters();
            const std::vector<double> rest = testing::to_vector(other.grad(info.name));
            for (std::size_t i = 0; i < got.size(); ++i) got[i] += rest[i];
          }
          const std::vector<double> want = testing::to_vector(serial.parameters().grad(info.name));
          ASSERT_EQ(got.size(), want.size());
          double scale = 0;
          for (double w : want) scale = std::max(scale, std::fabs(w));
          EXPECT_GT(scale, 0.0) << info.name;
          for (std::size_t i = 0; i < got.size(); ++i)
            ASSERT_NEAR(got[i], want[i], 1e-12 * scale)
                << family_name(config.family) << " pp " << pp << " " << info.name << "[" << i
                << "]";
        }
      }
    }
  }
}

TEST(ModelPlacement, MisuseFailsClearly) {
  // tp > 1 without a communicator: the store is fine, running is not.
  Transformer sharded(testing::tiny_gpt2(), DType::F32, tp_placement(0, 2));
  const OwnedBatch batch = testing::packed_batch(37, 41);
  try {
    sharded.forward(batch.view());
    ADD_FAILURE() << "forward without a tp communicator";
  } catch (const Error& error) {
    EXPECT_TRUE(mentions(error.what(), "needs a tensor-parallel communicator")) << error.what();
  }
  EXPECT_THROW(sharded.make_kv_cache(1, 4), Error);

  Transformer first(testing::tiny_gpt2(), DType::F32, pp_placement(0, 2));
  Transformer last(testing::tiny_gpt2(), DType::F32, pp_placement(1, 2));
  EXPECT_THROW(first.forward(batch.view()), Error);               // whole-model API on a stage
  EXPECT_THROW(last.forward_stage(0, batch.view(), {}), Error);   // needs the previous output
  EXPECT_THROW(first.forward_stage(1, batch.view(), {}), Error);  // one slot by default
  EXPECT_THROW(first.backward_stage(0, {}, 1.0), Error);          // no forward yet
  EXPECT_THROW(first.set_pipeline_slots(0), Error);
  const Transformer::StageForward out = first.forward_stage(0, batch.view(), {});
  ASSERT_EQ(out.output.shape, (Shape{2, 8, 16}));
  OwnedTensor wrong(DType::F32, {2, 8, 8});
  EXPECT_THROW(last.forward_stage(0, batch.view(), wrong), Error);
  last.forward_stage(0, batch.view(), out.output);
  EXPECT_THROW(last.backward_stage(0, out.output, 1.0), Error);  // the last stage has the loss
  EXPECT_THROW(first.backward_stage(0, {}, 1.0), Error);  // a middle/first stage needs grad_output
  EXPECT_THROW(first.make_kv_cache(1, 4), Error);
}

}  // namespace
}  // namespace kiln::model
