#pragma once
// Named chat templates (DESIGN.md §8): how a conversation becomes text, which parts of that
// text are trained on, and the same template as Jinja for Hugging Face's tokenizer_config.json
// and GGUF's tokenizer.chat_template, so a served model is prompted exactly as it was trained.
//
//   chatml   <|im_start|>{role}\n{content}<|im_end|>\n  ... (generation prompt: <|im_start|>assistant\n)
//   llama3   <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content, trimmed}<|eot_id|> ...
//            (generation prompt: <|start_header_id|>assistant<|end_header_id|>\n\n)
//
// Trained spans: an assistant message's content and its end-of-turn token (<|im_end|>,
// <|eot_id|>) — never the role header, never the text after the end-of-turn token, never
// another role's message.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "data/chat/conversation.hpp"

namespace kiln::chat {

struct RenderedText {
  std::string text;
  // Byte ranges [begin, end) of `text` that are trained on, ascending and disjoint.
  std::vector<std::pair<std::size_t, std::size_t>> trained_spans;
};

struct ChatTemplate {
  std::string name;
  std::string begin;         // once, before the first message (Llama-3's BOS)
  std::string header_open;   // before the role
  std::string header_close;  // between the role and the content
  std::string end_of_turn;   // the special token that closes every message
  std::string after_turn;    // text after end_of_turn (ChatML's newline), never trained on
  bool trim_content = false; // Llama-3 strips surrounding whitespace from every content
  std::string jinja;         // the same template for Hugging Face / llama.cpp

  RenderedText render(const Conversation& conversation) const;
  // What a prompt for the assistant's next turn ends with.
  std::string generation_prompt() const;
  // Special tokens the tokenizer must hold as single added tokens.
  std::vector<std::string> special_tokens() const;
};

// The template called `name`; kiln::Error listing the known names otherwise.
const ChatTemplate& find_chat_template(std::string_view name);
std::vector<std::string> chat_template_names();

}  // namespace kiln::chat
