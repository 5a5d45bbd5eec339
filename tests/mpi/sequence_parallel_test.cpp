// Sequence parallelism's purpose, measured: the activation arena of a tp = 2 rank after a
// training forward and backward, with and without SP, differs by exactly what the shapes say
// (activations.hpp): the residual stream's tensors and the norms' statistics shrink to their
// rank's chunk of T/tp positions, and the sequence collectives' two [B, T, C] buffers are
// added. Also the refusal of a sequence that does not split evenly. Under
// mpirun with 2 or 4 ranks (pairs of ranks form the tp groups); skipped in a single process.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "parallel/communicator.hpp"
#include "tests/model/model_testing.hpp"

namespace kiln::model {
namespace {

using parallel::Communicator;
using testing::OwnedBatch;

constexpr int kTp = 2;

Communicator& world() {
  static const std::unique_ptr<Communicator> communicator = parallel::world_communicator();
  return *communicator;
}

std::unique_ptr<Communicator> tp_pair() {
  if (world().size() < kTp || world().size() % kTp != 0) return nullptr;
  return parallel::split_communicator(world(), world().rank() / kTp, world().rank() % kTp, "tp");
}

ModelConfig for_tp(ModelConfig config) {
  config.tp = kTp;  // vocabulary padded for this tp
  return config.resolved();
}

// One tp rank of the whole model (one stage), SP on or off.
std::unique_ptr<Transformer> tp_rank_model(const ModelConfig& config, Communicator& tp, bool sequence_parallel) {
  ParallelPlacement placement;
  placement.tp = &tp;
  placement.tp_rank = tp.rank();
  placement.tp_size = kTp;
  placement.sequence_parallel = sequence_parallel;
  auto model = std::make_unique<Transformer>(config, DType::F32, placement);
  model->init_weights(5);
  return model;
}

OwnedBatch plain_batch(std::int64_t batch, std::int64_t seq, std::int64_t vocab) {
  OwnedBatch b;
  b.tokens = testing::index_tensor({batch, seq}, testing::random_ids(batch * seq, vocab, 7));
  b.targets = testing::index_tensor({batch, seq}, testing::random_ids(batch * seq, vocab, 8));
  return b;
}

// The activation bytes of a training step on this rank: what the arena holds once a forward
// and a backward have run.
std::size_t measured_activation_bytes(Transformer& model, const OwnedBatch& batch) {
  const auto loss = model.forward(batch.view());
  model.backward(1.0 / static_cast<double>(loss.count));
  return model.activation_bytes();
}

// Bytes of the tensors SP keeps at T/tp, for all T (the arena without SP), f32 and i32 alike:
// per block attn_norm, mid, mlp_norm and out [B, T, C] and two norms' statistics (mean and rstd
// for LayerNorm, rstd for RMSNorm, [B*T] each); once embedded, final_norm, d_residual and
// d_norm [B, T, C], the final norm's statistics, and zero_ids [B*T].
std::int64_t sequence_split_bytes(const ModelConfig& c, std::int64_t B, std::int64_t T) {
  const std::int64_t rows = B * T, stats_per_norm = c.norm() == NormKind::layernorm ? 2 : 1;
  const std::int64_t norms = 2 * c.n_layers + 1;
  const std::int64_t stream_tensors = 4 * c.n_layers + 4;
  return 4 * (rows * c.d_model * stream_tensors + rows * stats_per_norm * norms + rows);
}

// What SP adds: sequence_full and sequence_staging, [B, T, C] each.
std::int64_t sequence_collective_bytes(const ModelConfig& c, std::int64_t B, std::int64_t T) {
  return 4 * 2 * B * T * c.d_model;
}

// B * T / tp is a multiple of 16, so every arena slot SP changes is a multiple of the arena's
// 64-byte alignment: the arena's size is the plain sum of its tensors' bytes, and the
// difference is exact.
TEST(SequenceParallel, ActivationBytesPerRankShrinkByTheSequenceSplitTensors) {
  const auto tp = tp_pair();
  if (!tp) GTEST_SKIP() << "needs an even number of ranks";
  const std::int64_t B = 4, T = 16;
  for (const ModelConfig& config : {for_tp(testing::tiny_gpt2()), for_tp(testing::tiny_llama())}) {
    SCOPED_TRACE(family_name(config.family));
    const OwnedBatch batch = plain_batch(B, T, config.vocab_size);
    const auto plain = tp_rank_model(config, *tp, false);
    const auto split = tp_rank_model(config, *tp, true);
    const auto without = static_cast<std::int64_t>(measured_activation_bytes(*plain, batch));
    const auto with = static_cast<std::int64_t>(measured_activation_bytes(*split, batch));
    const std::int64_t sharded = sequence_split_bytes(config, B, T);
    const std::int64_t expected_saving = sharded - sharded / kTp - sequence_collective_bytes(config, B, T);
    EXPECT_EQ(without - with, expected_saving)
        << "without SP " << without << " B, with SP " << with << " B";
    EXPECT_LT(with, without);
    if (world().rank() == 0)
      std::printf("[ sp memory ] %s L=%lld C=%lld B=%lld T=%lld tp=%d: activation bytes per rank %lld without SP, "
                  "%lld with SP (sequence-split tensors %lld -> %lld, collectives' buffers +%lld)\n",
                  std::string(family_name(config.family)).c_str(), static_cast<long long>(config.n_layers),
                  static_cast<long long>(config.d_model), static_cast<long long>(B), static_cast<long long>(T), kTp,
                  static_cast<long long>(without), static_cast<long long>(with), static_cast<long long>(sharded),
                  static_cast<long long>(sharded / kTp),
                  static_cast<long long>(sequence_collective_bytes(config, B, T)));
  }
}

// Each rank keeps an equal chunk: a length tp does not divide is refused before any collective
// (so every rank throws and none waits).
TEST(SequenceParallel, SequenceThatDoesNotSplitEvenlyIsRefused) {
  const auto tp = tp_pair();
  if (!tp) GTEST_SKIP() << "needs an even number of ranks";
  const ModelConfig config = for_tp(testing::tiny_gpt2());
  const auto split = tp_rank_model(config, *tp, true);
  const OwnedBatch odd = plain_batch(2, 7, config.vocab_size);
  try {
    split->forward(odd.view());
    ADD_FAILURE() << "a sequence of 7 positions was split over tp = 2";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("train.seq_len divisible by parallel.tp"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW(split->reserve_activations(2, 7), Error);
}

}  // namespace
}  // namespace kiln::model
