#include "data/chat/chat_template.hpp"

#include <fmt/format.h>

#include <array>

#include "trainer/core/error.hpp"

namespace kiln::chat {

namespace {

constexpr std::string_view kWhitespace = " \t\n\r\f\v";

// Jinja's trim is Python's str.strip(); kiln strips ASCII whitespace, which is what chat
// data holds in practice.
std::string trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(kWhitespace);
  return std::string(text.substr(first, last - first + 1));
}

// Aggregate initialisation (not member assignment) also sidesteps a GCC 12 -Wrestrict false
// positive on std::string assignment from literals.
ChatTemplate make_chatml() {
  return ChatTemplate{
      .name = "chatml",
      .begin = "",
      .header_open = "<|im_start|>",
      .header_close = "\n",
      .end_of_turn = "<|im_end|>",
      .after_turn = "\n",
      .trim_content = false,
      .jinja = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
               "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
               "{% endif %}",
  };
}

ChatTemplate make_llama3() {
  return ChatTemplate{
      .name = "llama3",
      .begin = "<|begin_of_text|>",
      .header_open = "<|start_header_id|>",
      .header_close = "<|end_header_id|>\n\n",
      .end_of_turn = "<|eot_id|>",
      .after_turn = "",
      .trim_content = true,
      .jinja = "{% for message in messages %}{% set content = '<|start_header_id|>' + message['role'] + "
               "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
               "{% set content = '<|begin_of_text|>' + content %}{% endif %}{{ content }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
  };
}

const std::array<ChatTemplate, 2>& templates() {
  static const std::array<ChatTemplate, 2> all{make_chatml(), make_llama3()};
  return all;
}

}  // namespace

RenderedText ChatTemplate::render(const Conversation& conversation) const {
  RenderedText rendered;
  std::string& text = rendered.text;
  text = begin;
  for (const auto& message : conversation.messages) {
    text += header_open + message.role + header_close;
    const std::size_t content_begin = text.size();
    text += trim_content ? trimmed(message.content) : message.content;
    text += end_of_turn;
    if (message.role == "assistant") rendered.trained_spans.emplace_back(content_begin, text.size());
    text += after_turn;
  }
  return rendered;
}

std::string ChatTemplate::generation_prompt() const { return header_open + "assistant" + header_close; }

std::vector<std::string> ChatTemplate::special_tokens() const {
  std::vector<std::string> tokens;
  if (!begin.empty()) tokens.push_back(begin);
  tokens.push_back(header_open);
  // Llama-3's header close starts with a special token followed by newlines.
  const auto special_end = header_close.find("|>");
  if (special_end != std::string::npos) tokens.push_back(header_close.substr(0, special_end + 2));
  tokens.push_back(end_of_turn);
  return tokens;
}

const ChatTemplate& find_chat_template(std::string_view name) {
  for (const auto& candidate : templates()) {
    if (candidate.name == name) return candidate;
  }
  fail("unknown chat template '{}'; kiln knows {}", name, fmt::join(chat_template_names(), ", "));
}

std::vector<std::string> chat_template_names() {
  std::vector<std::string> names;
  for (const auto& candidate : templates()) names.push_back(candidate.name);
  return names;
}

}  // namespace kiln::chat
