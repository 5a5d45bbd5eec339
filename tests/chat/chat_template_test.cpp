// The named templates render exactly the text Hugging Face's chat templates produce, and mark
// as trained exactly each assistant message's content plus its end-of-turn token.
#include <gtest/gtest.h>

#include "data/chat/chat_template.hpp"
#include "trainer/core/error.hpp"

namespace kiln::chat {
namespace {

const Conversation kConversation{{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", " Hello. "},
                                  {"user", "Bye"}, {"assistant", "Bye."}}};

std::vector<std::string> trained_texts(const RenderedText& rendered) {
  std::vector<std::string> texts;
  for (const auto& [begin, end] : rendered.trained_spans) texts.push_back(rendered.text.substr(begin, end - begin));
  return texts;
}

TEST(ChatTemplate, ChatMl) {
  const auto rendered = find_chat_template("chatml").render(kConversation);
  EXPECT_EQ(rendered.text,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n Hello. <|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
            "<|im_start|>assistant\nBye.<|im_end|>\n");
  EXPECT_EQ(trained_texts(rendered), (std::vector<std::string>{" Hello. <|im_end|>", "Bye.<|im_end|>"}));
  EXPECT_EQ(find_chat_template("chatml").generation_prompt(), "<|im_start|>assistant\n");
  EXPECT_EQ(find_chat_template("chatml").special_tokens(), (std::vector<std::string>{"<|im_start|>", "<|im_end|>"}));
}

TEST(ChatTemplate, Llama3TrimsContents) {
  const auto& llama3 = find_chat_template("llama3");
  const auto rendered = llama3.render(kConversation);
  EXPECT_EQ(rendered.text,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nBye.<|eot_id|>");
  EXPECT_EQ(trained_texts(rendered), (std::vector<std::string>{"Hello.<|eot_id|>", "Bye.<|eot_id|>"}));
  EXPECT_EQ(llama3.special_tokens(),
            (std::vector<std::string>{"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}));
  EXPECT_NE(llama3.jinja.find("| trim"), std::string::npos);
}

TEST(ChatTemplate, UnknownNameListsTheKnownOnes) {
  try {
    find_chat_template("vicuna");
    ADD_FAILURE();
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("chatml, llama3"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace kiln::chat
