// Rendering to ids with the fixture tokenizers (tests/fixtures/interop): the ids are the
// tokenizer's encoding of the whole rendered text, and the loss mask covers exactly the
// assistant contents and their end-of-turn tokens.
#include <gtest/gtest.h>

#include "data/chat/chat_renderer.hpp"
#include "trainer/core/error.hpp"

namespace kiln::chat {
namespace {

tok::Tokenizer fixture_tokenizer(const std::string& family) {
  return tok::Tokenizer::load(std::string(KILN_FIXTURES_DIR) + "/interop/" + family + "/tokenizer.json");
}

const Conversation kConversation{{{"system", "Count the pots."}, {"user", "How many bowls?"},
                                  {"assistant", " Twelve bowls, and 7 cups."}, {"user", "Glaze?"},
                                  {"assistant", "Blue!"}}};

// The text of the ids whose mask equals `masked`.
std::string text_where(const tok::Tokenizer& tokenizer, const RenderedConversation& rendered, std::uint8_t masked) {
  std::vector<tok::TokenId> ids;
  for (std::size_t i = 0; i < rendered.ids.size(); ++i) {
    if (rendered.loss_mask[i] == masked) ids.push_back(rendered.ids[i]);
  }
  return tokenizer.decode(ids);
}

TEST(ChatRenderer, ChatMlMaskIsExactlyTheAssistantSpans) {
  const auto tokenizer = fixture_tokenizer("gpt2");
  const auto& chatml = find_chat_template("chatml");
  const ChatRenderer renderer(chatml, tokenizer, "gpt2 fixture");
  const auto rendered = renderer.render(kConversation);
  EXPECT_EQ(rendered.ids, tokenizer.encode(chatml.render(kConversation).text));
  EXPECT_EQ(text_where(tokenizer, rendered, 1), " Twelve bowls, and 7 cups.<|im_end|>Blue!<|im_end|>");
  EXPECT_EQ(text_where(tokenizer, rendered, 0),
            "<|im_start|>system\nCount the pots.<|im_end|>\n<|im_start|>user\nHow many bowls?<|im_end|>\n"
            "<|im_start|>assistant\n\n<|im_start|>user\nGlaze?<|im_end|>\n<|im_start|>assistant\n\n");
  EXPECT_EQ(rendered.loss_mask.front(), 0);
  EXPECT_EQ(renderer.end_of_turn_id(), *tokenizer.token_to_id("<|im_end|>"));
  // Each end-of-turn token of an assistant turn is trained on; the user's is not.
  const auto im_end = renderer.end_of_turn_id();
  std::vector<std::uint8_t> end_masks;
  for (std::size_t i = 0; i < rendered.ids.size(); ++i) {
    if (rendered.ids[i] == im_end) end_masks.push_back(rendered.loss_mask[i]);
  }
  EXPECT_EQ(end_masks, (std::vector<std::uint8_t>{0, 0, 1, 0, 1}));
}

TEST(ChatRenderer, Llama3MaskIsExactlyTheAssistantSpans) {
  const auto tokenizer = fixture_tokenizer("llama");
  const ChatRenderer renderer(find_chat_template("llama3"), tokenizer, "llama fixture");
  const auto rendered = renderer.render(kConversation);
  EXPECT_EQ(rendered.ids.front(), *tokenizer.token_to_id("<|begin_of_text|>"));
  EXPECT_EQ(text_where(tokenizer, rendered, 1), "Twelve bowls, and 7 cups.<|eot_id|>Blue!<|eot_id|>");
  EXPECT_EQ(rendered.trained_tokens(), static_cast<std::size_t>(std::count(rendered.loss_mask.begin(), rendered.loss_mask.end(), 1)));
}

TEST(ChatRenderer, TokenizerWithoutTheTemplatesTokens) {
  const auto tokenizer = fixture_tokenizer("gpt2");
  try {
    ChatRenderer renderer(find_chat_template("llama3"), tokenizer, "gpt2.json");
    ADD_FAILURE();
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("gpt2.json has no special token <|begin_of_text|>"), std::string::npos) << message;
    EXPECT_NE(message.find("--special"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace kiln::chat
