// MicroBatch: the host work done once per micro-batch before the model sees it (token-id and
// target range checks naming the dataset, positions restarting at documents), and the shared
// builder (model::BatchInputs) the other callers use.
#include "trainer/train/micro_batch.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "trainer/core/error.hpp"

namespace kiln::train {
namespace {

// Two rows of T = 4 inputs (windows of 5 tokens), ids below 10.
data::Batch loader_batch() {
  data::Batch batch;
  batch.rows = 2;
  batch.seq_len = 4;
  batch.tokens = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0};
  return batch;
}

// Row 0 holds documents starting at 0 and 2, row 1 documents at 0, 1 and 3.
data::Batch packed_loader_batch() {
  data::Batch batch = loader_batch();
  batch.segment_offsets = {0, 2, 5};
  batch.segment_starts = {0, 2, 0, 1, 3};
  batch.positions = {0, 1, 0, 1, 0, 0, 1, 0};
  return batch;
}

const MicroBatchSource kSource{"train.bin", {.vocab_size = 10, .max_seq_len = 8}};

std::string slice_error(const data::Batch& batch, const MicroBatchSource& source) {
  try {
    slice_micro_batch(batch, 0, batch.rows, source);
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(MicroBatch, UnpackedRowsGetPositionsFromZero) {
  const MicroBatch micro = slice_micro_batch(loader_batch(), 0, 2, kSource);
  EXPECT_EQ(micro.positions, (std::vector<std::uint32_t>{0, 1, 2, 3, 0, 1, 2, 3}));
  EXPECT_TRUE(micro.view().positions.defined());
}

TEST(MicroBatch, PackedPositionsRestartAtEveryDocument) {
  const MicroBatch micro = slice_micro_batch(packed_loader_batch(), 0, 2, kSource);
  EXPECT_EQ(micro.doc_ids, (std::vector<std::uint32_t>{0, 0, 1, 1, 0, 1, 1, 2}));
  EXPECT_EQ(micro.positions, (std::vector<std::uint32_t>{0, 1, 0, 1, 0, 0, 1, 0}));
  // The shared builder computes the same positions from the document ids alone.
  const auto built = model::document_positions(micro.view().doc_ids, 2, 4);
  EXPECT_EQ(std::vector<std::uint32_t>(built.begin(), built.end()), micro.positions);
}

TEST(MicroBatch, TokenIdOutsideTheVocabularyNamesDatasetIdAndVocabulary) {
  data::Batch batch = loader_batch();
  batch.tokens[6] = 12;  // row 1, input position 1
  const std::string error = slice_error(batch, kSource);
  EXPECT_NE(error.find("train.bin: micro-batch of rows [0, 2)"), std::string::npos) << error;
  EXPECT_NE(error.find("token id 12 is outside the vocabulary of 10 tokens (row 1, position 1)"),
            std::string::npos)
      << error;
}

TEST(MicroBatch, TargetOutsideTheVocabularyIsRefusedUnlessMasked) {
  data::Batch batch = loader_batch();
  batch.tokens[9] = 10;  // the last target of row 1 only
  EXPECT_NE(slice_error(batch, kSource).find("target id 10 is outside the vocabulary of 10"),
            std::string::npos)
      << slice_error(batch, kSource);
  batch.loss_mask.assign(batch.tokens.size(), 1);
  batch.loss_mask[9] = 0;  // that target does not count: nothing reads it
  EXPECT_EQ(slice_error(batch, kSource), "");
}

TEST(MicroBatch, SequenceLongerThanTheModelIsRefused) {
  const MicroBatchSource short_model{"val.bin", {.vocab_size = 10, .max_seq_len = 3}};
  const std::string error = slice_error(loader_batch(), short_model);
  EXPECT_NE(error.find("val.bin"), std::string::npos) << error;
  EXPECT_NE(error.find("sequence length 4 exceeds max_seq_len 3"), std::string::npos) << error;
}

TEST(BatchInputs, BuildsPositionsFromDocumentsAndChecksIds) {
  std::vector<std::int32_t> tokens{1, 2, 3, 4, 5, 6}, docs{7, 7, 8, 8, 8, 9};
  model::Batch batch;
  batch.tokens = Tensor::of(tokens.data(), {1, 6});
  batch.doc_ids = Tensor::of(docs.data(), {1, 6});
  const model::BatchInputs inputs(batch, {.vocab_size = 10, .max_seq_len = 8}, "scoring");
  const std::vector<std::int64_t> positions = index_values(inputs.batch().positions, "test");
  EXPECT_EQ(positions, (std::vector<std::int64_t>{0, 1, 0, 1, 2, 0}));
  tokens[4] = -1;
  try {
    model::BatchInputs bad(batch, {.vocab_size = 10, .max_seq_len = 8}, "scoring");
    ADD_FAILURE() << "a negative id was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("scoring: token id -1 is outside the vocabulary"),
              std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace kiln::train
