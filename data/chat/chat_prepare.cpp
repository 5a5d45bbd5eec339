#include "data/chat/chat_prepare.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <chrono>

#include "data/chat/chat_renderer.hpp"
#include "data/chat/conversation_reader.hpp"
#include "data/dataset/token_dataset.hpp"
#include "parallel/mpi_environment.hpp"
#include "trainer/core/checksum.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/version.hpp"

namespace kiln::data {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kConversationsPerBatch = 512;

struct ChatSplit {
  TokenDatasetWriter writer;
  chat::ConversationPacker packer;

  ChatSplit(const std::filesystem::path& path, TokenDatasetAttributes attributes, const chat::PackingOptions& packing)
      : writer(path, std::move(attributes), /*with_loss_mask=*/true),
        packer(packing, [this](std::span<const std::uint32_t> ids, std::span<const std::uint8_t> mask) {
          writer.append_document(ids, mask);
        }) {}
};

TokenDatasetAttributes chat_attributes(const std::string& split, const tok::Tokenizer& tokenizer, tok::TokenId eos,
                                       const chat::ChatRenderer& renderer, const std::string& source_checksum) {
  TokenDatasetAttributes attributes;
  attributes.split = split;
  attributes.tokenizer_hash = to_hex(tokenizer.content_hash());
  attributes.vocab_size = tokenizer.vocab_size();
  attributes.special_ids["eos"] = eos;
  attributes.special_ids["end_of_turn"] = renderer.end_of_turn_id();
  attributes.source_checksum = source_checksum;
  attributes.created_by = fmt::format("kiln {} prepare --format chat --template {}", kVersion,
                                      renderer.chat_template().name);
  attributes.chat_template = renderer.chat_template().name;
  return attributes;
}

std::vector<chat::RenderedConversation> render_batch(const chat::ChatRenderer& renderer,
                                                     const std::vector<chat::Conversation>& batch) {
  std::vector<chat::RenderedConversation> rendered(batch.size());
  const auto count = static_cast<std::ptrdiff_t>(batch.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (std::ptrdiff_t i = 0; i < count; ++i) {
    rendered[static_cast<std::size_t>(i)] = renderer.render(batch[static_cast<std::size_t>(i)]);
  }
  return rendered;
}

void check(const PrepareOptions& options) {
  if (options.chat.template_name.empty()) {
    fail("--format chat needs --template NAME ({})", fmt::join(chat::chat_template_names(), ", "));
  }
  if (options.chat.seq_len < 2) fail("--format chat needs --seq-len N (the recipe's train.seq_len), at least 2");
}

}  // namespace

PrepareSummary prepare_chat_datasets(const PrepareOptions& options) {
  check(options);
  const auto start = Clock::now();
  const auto& mpi = parallel::MpiEnvironment::instance();
  const chat::ChatTemplate& chat_template = chat::find_chat_template(options.chat.template_name);
  PrepareSummary summary;
  summary.ranks = mpi.world_size();
  if (!mpi.is_root()) {
    mpi.barrier();
    return summary;
  }
  parallel::use_threads(options.threads);
  summary.threads = omp_get_max_threads();

  const auto tokenizer = tok::Tokenizer::load(options.tokenizer);
  const tok::TokenId eos = choose_eos(tokenizer, options);
  const chat::ChatRenderer renderer(chat_template, tokenizer, options.tokenizer.string());
  chat::ConversationReader reader(options.inputs, {options.chat.fields, options.on_bad_record});
  std::filesystem::create_directories(options.out_dir);
  const std::string checksum = combined_input_checksum(options.inputs);
  const chat::PackingOptions packing{options.chat.seq_len, options.chat.pack, options.chat.overlong, eos};
  ChatSplit train(options.out_dir / "train.h5", chat_attributes("train", tokenizer, eos, renderer, checksum), packing);
  ChatSplit val(options.out_dir / "val.h5", chat_attributes("val", tokenizer, eos, renderer, checksum), packing);

  std::uint64_t ordinal = 0;
  std::vector<chat::Conversation> batch;
  chat::Conversation conversation;
  bool more = true;
  while (more) {
    batch.clear();
    while (batch.size() < kConversationsPerBatch && (more = reader.next(conversation))) batch.push_back(conversation);
    for (auto& rendered : render_batch(renderer, batch)) {
      const bool to_val = is_validation_document(options.seed, ordinal++, options.val_fraction);
      (to_val ? val : train).packer.add(std::move(rendered));
    }
  }
  train.packer.finish();
  val.packer.finish();
  publish_prepared(train.writer, val.writer, options);

  summary.train = {train.writer.documents_written(), train.writer.tokens_written()};
  summary.val = {val.writer.documents_written(), val.writer.tokens_written()};
  summary.chat_train = train.packer.counts();
  summary.chat_val = val.packer.counts();
  summary.skipped_records = reader.report().skipped;
  summary.input_bytes = reader.report().bytes;
  mpi.barrier();
  summary.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return summary;
}

}  // namespace kiln::data
