// SFT losses: training on conversations packed into one sequence (document ids, restarted
// positions, loss mask) gives exactly the loss of training on each conversation alone, in the
// model and end to end through `prepare --format chat`, the loader and evaluation.
#include <gtest/gtest.h>

#include <fstream>
#include <numeric>

#include "data/chat/chat_prepare.hpp"
#include "data/chat/chat_renderer.hpp"
#include "data/dataset/token_dataset.hpp"
#include "tests/dataset/test_datasets.hpp"
#include "tests/model/model_testing.hpp"
#include "trainer/model/transformer.hpp"
#include "trainer/train/evaluate.hpp"

namespace kiln::chat {
namespace {

namespace fs = std::filesystem;

fs::path fixture_tokenizer() { return fs::path(KILN_FIXTURES_DIR) / "interop" / "llama" / "tokenizer.json"; }

std::vector<Conversation> conversations() {
  return {{{{"user", "How many bowls?"}, {"assistant", "Twelve."}}},
          {{{"system", "Be brief."}, {"user", "Glaze color?"}, {"assistant", "Blue."}, {"user", "And?"}, {"assistant", "Green!"}}},
          {{{"user", "7 plus 5?"}, {"assistant", "12"}}}};
}

// Forward of one row: inputs ids[0, n-1), targets ids[1, n), target masks mask[1, n).
ops::LossSum row_loss(model::Transformer& model, const std::vector<std::uint32_t>& ids, const std::vector<std::uint8_t>& mask,
                      const std::vector<std::uint32_t>* doc_ids = nullptr, const std::vector<std::uint32_t>* positions = nullptr) {
  std::vector<std::uint32_t> tokens(ids.begin(), ids.end() - 1);
  std::vector<std::uint32_t> targets(ids.begin() + 1, ids.end());
  std::vector<std::uint8_t> target_mask(mask.begin() + 1, mask.end());
  std::vector<std::uint32_t> docs = doc_ids ? *doc_ids : std::vector<std::uint32_t>{};
  std::vector<std::uint32_t> pos = positions ? *positions : std::vector<std::uint32_t>{};
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  model::Batch batch;
  batch.tokens = Tensor::of(tokens.data(), {1, n});
  batch.targets = Tensor::of(targets.data(), {1, n});
  batch.loss_mask = Tensor::of(target_mask.data(), {1, n});
  if (doc_ids) batch.doc_ids = Tensor::of(docs.data(), {1, n});
  if (positions) batch.positions = Tensor::of(pos.data(), {1, n});
  return model.forward(model::BatchInputs(batch, model::BatchLimits::of(model.config()), "sft test row").batch());
}

TEST(SftLoss, PackedEqualsOneConversationAtATime) {
  const auto tokenizer = tok::Tokenizer::load(fixture_tokenizer());
  const ChatRenderer renderer(find_chat_template("llama3"), tokenizer, "llama fixture");
  model::Transformer model(model::testing::fixture_llama(256));
  model.init_weights(42);

  ops::LossSum separate;
  std::vector<std::uint32_t> ids, doc_ids, positions;
  std::vector<std::uint8_t> mask;
  std::uint32_t document = 0;
  for (const auto& c : conversations()) {
    const auto rendered = renderer.render(c);
    const auto alone = row_loss(model, rendered.ids, rendered.loss_mask);
    separate.sum += alone.sum;
    separate.count += alone.count;
    EXPECT_EQ(alone.count, static_cast<std::int64_t>(rendered.trained_tokens()));
    ids.insert(ids.end(), rendered.ids.begin(), rendered.ids.end());
    mask.insert(mask.end(), rendered.loss_mask.begin(), rendered.loss_mask.end());
    for (std::uint32_t p = 0; p < rendered.ids.size(); ++p) {
      doc_ids.push_back(document);
      positions.push_back(p);
    }
    ++document;
  }
  doc_ids.pop_back();  // inputs are ids[0, n-1)
  positions.pop_back();
  const auto packed = row_loss(model, ids, mask, &doc_ids, &positions);
  EXPECT_EQ(packed.count, separate.count);
  EXPECT_NEAR(packed.sum, separate.sum, 1e-5 * separate.sum);
  EXPECT_GT(separate.count, 0);
}

TEST(SftLoss, PreparedPackedAndUnpackedDatasetsEvaluateTheSame) {
  kiln::testing::TempDir dir;
  {
    std::ofstream out(dir / "chat.jsonl");
    for (int copy = 0; copy < 4; ++copy) {
      out << R"({"messages": [{"role": "user", "content": "How many bowls?"}, {"role": "assistant", "content": "Twelve bowls."}]})" << "\n"
          << R"({"prompt": "Glaze color?", "completion": "Blue and green, )" << copy << R"("})" << "\n";
    }
  }
  data::PrepareOptions options;
  options.format = data::PrepareFormat::chat;
  options.tokenizer = fixture_tokenizer();
  options.inputs = {dir / "chat.jsonl"};
  options.val_fraction = 0.0;
  options.eos_token = "<|end_of_text|>";
  options.progress = false;
  options.chat.template_name = "llama3";
  options.chat.seq_len = 128;
  options.out_dir = dir / "packed";
  const auto packed_summary = data::prepare_datasets(options);
  options.chat.pack = false;
  options.out_dir = dir / "unpacked";
  const auto unpacked_summary = data::prepare_datasets(options);
  EXPECT_EQ(packed_summary.chat_train.conversations, 8u);
  EXPECT_LT(packed_summary.chat_train.windows, unpacked_summary.chat_train.windows);
  EXPECT_EQ(unpacked_summary.chat_train.windows, 8u);

  model::Transformer model(model::testing::fixture_llama(256));
  model.init_weights(7);
  train::EvalOptions eval;
  eval.seq_len = 128;
  eval.rows = 1;
  double losses[2];
  std::int64_t tokens[2];
  int k = 0;
  for (const char* name : {"packed", "unpacked"}) {
    auto dataset = std::make_shared<const data::TokenDataset>(data::TokenDataset::open(dir / name / "train.h5"));
    EXPECT_TRUE(dataset->has_loss_mask());
    EXPECT_EQ(dataset->attributes().chat_template, "llama3");
    EXPECT_EQ(dataset->num_tokens() % 128, 1u);
    const auto result = train::evaluate(model, dataset, eval);
    losses[k] = result.loss;
    tokens[k++] = result.tokens;
  }
  EXPECT_EQ(tokens[0], tokens[1]);
  EXPECT_EQ(static_cast<std::uint64_t>(tokens[0]), packed_summary.chat_train.trained_tokens);
  EXPECT_NEAR(losses[0], losses[1], 1e-5 * losses[1]);
}

}  // namespace
}  // namespace kiln::chat
