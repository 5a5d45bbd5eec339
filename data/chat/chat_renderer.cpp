#include "data/chat/chat_renderer.hpp"

#include <algorithm>

#include "trainer/core/error.hpp"

namespace kiln::chat {

std::size_t RenderedConversation::trained_tokens() const {
  return static_cast<std::size_t>(std::count(loss_mask.begin(), loss_mask.end(), std::uint8_t{1}));
}

ChatRenderer::ChatRenderer(const ChatTemplate& chat_template, const tok::Tokenizer& tokenizer,
                           std::string_view tokenizer_name)
    : template_(chat_template), tokenizer_(tokenizer) {
  for (const auto& token : template_.special_tokens()) {
    const auto ids = tokenizer_.encode(token);
    if (ids.size() != 1 || !tokenizer_.token_to_id(token)) {
      fail("tokenizer {} has no special token {} that the {} chat template needs; train one that has it "
           "(kiln tokenizer train --special '{}' ...) or pick another --template",
           tokenizer_name, token, template_.name, fmt::join(template_.special_tokens(), "' '"));
    }
  }
  end_of_turn_id_ = *tokenizer_.token_to_id(template_.end_of_turn);
  token_bytes_.resize(tokenizer_.vocab_size());
  for (std::size_t id = 0; id < token_bytes_.size(); ++id) {
    const tok::TokenId one[] = {static_cast<tok::TokenId>(id)};
    try {
      token_bytes_[id] = static_cast<std::uint32_t>(tokenizer_.decode(one).size());
    } catch (const Error&) {
      token_bytes_[id] = 0;  // an id the vocabulary skips never comes out of encode
    }
  }
}

RenderedConversation ChatRenderer::render(const Conversation& conversation) const {
  const RenderedText rendered = template_.render(conversation);
  RenderedConversation out;
  out.ids = tokenizer_.encode(rendered.text);
  out.loss_mask.assign(out.ids.size(), 0);
  std::size_t position = 0;
  std::size_t span = 0;
  const auto& spans = rendered.trained_spans;
  for (std::size_t i = 0; i < out.ids.size(); ++i) {
    const std::size_t end = position + token_bytes_[out.ids[i]];
    while (span < spans.size() && spans[span].second <= position) ++span;
    if (span < spans.size() && spans[span].first < end) out.loss_mask[i] = 1;
    position = end;
  }
  if (position != rendered.text.size()) {
    fail("chat template {}: the tokens decode to {} bytes but the text has {} (a tokenizer that adds a prefix "
         "space cannot render chats exactly)",
         template_.name, position, rendered.text.size());
  }
  return out;
}

}  // namespace kiln::chat
