#pragma once
// A chat conversation as SFT data holds it (DESIGN.md §8): messages with a role (system,
// user, assistant) and a content string, in order. One JSONL record gives one conversation,
// written either way:
//   {"messages": [{"role": "system", "content": ".."}, {"role": "user", ..}, {"role": "assistant", ..}, ...]}
//   {"prompt": "..", "completion": ".."}   (optional "system"): one user turn, one assistant turn
// A conversation must hold at least one assistant message (there would be nothing to learn),
// and a system message may only come first.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::chat {

struct Message {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
  bool operator==(const Message&) const = default;
};

struct Conversation {
  std::vector<Message> messages;
  bool operator==(const Conversation&) const = default;
};

// Which fields a prompt/completion record uses (`kiln prepare --prompt-field ...`).
struct RecordFields {
  std::string messages = "messages";
  std::string prompt = "prompt";
  std::string completion = "completion";
  std::string system = "system";
};

// Throws kiln::Error starting with `where` (e.g. "chat.jsonl:12") and naming the field.
Conversation conversation_from_json(const nlohmann::json& record, std::string_view where,
                                    const RecordFields& fields = {});

}  // namespace kiln::chat
