#pragma once
// A conversation -> token ids and the SFT loss mask (DESIGN.md §8).
//
// The rendered text is encoded in one piece, as `tokenizer(apply_chat_template(...))` would
// encode it, so the ids are the ones a served model sees. The mask is then found by walking
// the ids with the byte length of each token's text: a token is trained on (mask 1) when its
// bytes overlap a trained span of the template (an assistant message's content and its
// end-of-turn token). Mask index i refers to token i as a *target*: the loader pairs it with
// the prediction made from tokens < i.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/chat/chat_template.hpp"
#include "data/tokenizer/tokenizer.hpp"

namespace kiln::chat {

struct RenderedConversation {
  std::vector<std::uint32_t> ids;
  std::vector<std::uint8_t> loss_mask;  // same length as ids, 0 or 1
  std::size_t trained_tokens() const;
};

class ChatRenderer {
 public:
  // Checks that the tokenizer holds every special token of the template as one id; the
  // error names the token, the tokenizer and how to train one that has it.
  ChatRenderer(const ChatTemplate& chat_template, const tok::Tokenizer& tokenizer,
               std::string_view tokenizer_name);

  RenderedConversation render(const Conversation& conversation) const;
  const ChatTemplate& chat_template() const { return template_; }
  tok::TokenId end_of_turn_id() const { return end_of_turn_id_; }

 private:
  const ChatTemplate& template_;
  const tok::Tokenizer& tokenizer_;
  tok::TokenId end_of_turn_id_ = 0;
  std::vector<std::uint32_t> token_bytes_;  // by id: the length of the token's text
};

}  // namespace kiln::chat
