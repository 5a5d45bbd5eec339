#include "data/chat/conversation.hpp"

#include "trainer/core/error.hpp"

namespace kiln::chat {

namespace {

using nlohmann::json;

std::string string_field(const json& object, const std::string& key, std::string_view where) {
  if (!object.contains(key)) fail("{}: missing field \"{}\"", where, key);
  if (!object[key].is_string()) fail("{}: field \"{}\" must be a string, found {}", where, key, object[key].type_name());
  return object[key].get<std::string>();
}

Message message_from_json(const json& item, std::size_t index, std::string_view where) {
  const std::string at = fmt::format("{}: messages[{}]", where, index);
  if (!item.is_object()) fail("{}: expected an object with \"role\" and \"content\", found {}", at, item.type_name());
  Message message{string_field(item, "role", at), string_field(item, "content", at)};
  if (message.role != "system" && message.role != "user" && message.role != "assistant") {
    fail("{}: role \"{}\" is not one of system, user, assistant", at, message.role);
  }
  if (message.role == "system" && index != 0) fail("{}: a system message may only come first", at);
  return message;
}

Conversation from_messages(const json& messages, std::string_view where) {
  if (!messages.is_array()) fail("{}: field \"messages\" must be an array, found {}", where, messages.type_name());
  Conversation conversation;
  for (std::size_t i = 0; i < messages.size(); ++i) conversation.messages.push_back(message_from_json(messages[i], i, where));
  return conversation;
}

Conversation from_prompt_completion(const json& record, std::string_view where, const RecordFields& fields) {
  Conversation conversation;
  if (record.contains(fields.system) && !record[fields.system].is_null()) {
    conversation.messages.push_back({"system", string_field(record, fields.system, where)});
  }
  conversation.messages.push_back({"user", string_field(record, fields.prompt, where)});
  conversation.messages.push_back({"assistant", string_field(record, fields.completion, where)});
  return conversation;
}

}  // namespace

Conversation conversation_from_json(const json& record, std::string_view where, const RecordFields& fields) {
  if (!record.is_object()) fail("{}: expected a JSON object, found {}", where, record.type_name());
  Conversation conversation;
  if (record.contains(fields.messages)) {
    conversation = from_messages(record[fields.messages], where);
  } else if (record.contains(fields.prompt) || record.contains(fields.completion)) {
    conversation = from_prompt_completion(record, where, fields);
  } else {
    fail("{}: a chat record needs \"{}\" or \"{}\"/\"{}\" fields", where, fields.messages, fields.prompt,
         fields.completion);
  }
  bool has_assistant = false;
  for (const auto& message : conversation.messages) has_assistant |= message.role == "assistant";
  if (!has_assistant) fail("{}: the conversation has no assistant message (nothing to train on)", where);
  return conversation;
}

}  // namespace kiln::chat
