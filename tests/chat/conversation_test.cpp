// Chat records: `messages` and prompt/completion forms, and every malformed record named by
// where it is and which field is wrong.
#include <gtest/gtest.h>

#include <fstream>

#include "data/chat/conversation.hpp"
#include "data/chat/conversation_reader.hpp"
#include "tests/dataset/test_datasets.hpp"
#include "trainer/core/error.hpp"

namespace kiln::chat {
namespace {

using nlohmann::json;

std::string error_of(const std::string& line) {
  try {
    conversation_from_json(json::parse(line), "chat.jsonl:3");
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(Conversation, MessagesForm) {
  const auto c = conversation_from_json(
      json::parse(R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                   {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"},
                                   {"role": "assistant", "content": "Bye."}], "id": 7})"),
      "x");
  ASSERT_EQ(c.messages.size(), 5u);
  EXPECT_EQ(c.messages[0], (Message{"system", "Be brief."}));
  EXPECT_EQ(c.messages[4], (Message{"assistant", "Bye."}));
}

TEST(Conversation, PromptCompletionFormWithOptionalSystem) {
  const auto c = conversation_from_json(json::parse(R"({"prompt": "2+2?", "completion": " 4", "system": "Math."})"), "x");
  EXPECT_EQ(c.messages, (std::vector<Message>{{"system", "Math."}, {"user", "2+2?"}, {"assistant", " 4"}}));
  RecordFields fields;
  fields.completion = "answer";
  const auto tasks = conversation_from_json(json::parse(R"({"prompt": "Q", "answer": "A", "kind": "facts"})"), "x", fields);
  EXPECT_EQ(tasks.messages.back(), (Message{"assistant", "A"}));
}

TEST(Conversation, BadRecordsNameWhereAndWhat) {
  EXPECT_NE(error_of(R"({"text": "plain"})").find("chat.jsonl:3: a chat record needs"), std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "robot", "content": "x"}]})").find("messages[0]: role \"robot\""),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user"}]})").find("missing field \"content\""), std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": "only"}]})").find("no assistant message"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]})")
                .find("may only come first"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"prompt": "a", "completion": 4})").find("\"completion\" must be a string"), std::string::npos);
  EXPECT_NE(error_of(R"({"messages": "hi"})").find("must be an array"), std::string::npos);
}

TEST(ConversationReader, SkipsOrFailsOnBadLines) {
  kiln::testing::TempDir dir;
  std::ofstream(dir / "chat.jsonl") << R"({"prompt": "a", "completion": "b"})" << "\n\n"
                                    << R"({"prompt": "a")" << "\n"
                                    << R"({"messages": [{"role": "assistant", "content": "c"}]})" << "\n";
  ConversationReaderOptions options;
  ConversationReader failing({dir / "chat.jsonl"}, options);
  Conversation c;
  EXPECT_TRUE(failing.next(c));
  try {
    failing.next(c);
    ADD_FAILURE();
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("chat.jsonl:3: malformed JSON"), std::string::npos) << error.what();
  }
  options.on_bad_record = data::BadRecordPolicy::Skip;
  options.max_reported_problems = 0;
  ConversationReader skipping({dir / "chat.jsonl"}, options);
  int read = 0;
  while (skipping.next(c)) ++read;
  EXPECT_EQ(read, 2);
  EXPECT_EQ(skipping.report().skipped, 1u);
  EXPECT_THROW(ConversationReader({dir / "missing.jsonl"}, options), Error);
  std::ofstream(dir / "notes.txt") << "x";
  EXPECT_THROW(ConversationReader({dir / "notes.txt"}, options), Error);
}

}  // namespace
}  // namespace kiln::chat
