#include "data/chat/chat_packing.hpp"

#include <vector>

#include "trainer/core/error.hpp"

namespace kiln::chat {

PackingCounts& PackingCounts::operator+=(const PackingCounts& other) {
  conversations += other.conversations;
  truncated += other.truncated;
  dropped += other.dropped;
  windows += other.windows;
  filler_tokens += other.filler_tokens;
  trained_tokens += other.trained_tokens;
  return *this;
}

ConversationPacker::ConversationPacker(PackingOptions options, Emit emit)
    : options_(options), emit_(std::move(emit)) {
  if (options_.seq_len < 2) fail("chat packing needs seq_len >= 2, got {}", options_.seq_len);
}

void ConversationPacker::add(RenderedConversation conversation) {
  if (conversation.ids.size() > options_.seq_len) {
    if (options_.overlong == OverlongPolicy::drop) {
      ++counts_.dropped;
      return;
    }
    conversation.ids.resize(options_.seq_len);
    conversation.loss_mask.resize(options_.seq_len);
    if (conversation.trained_tokens() == 0) {
      ++counts_.dropped;
      return;
    }
    ++counts_.truncated;
  }
  if (conversation.ids.empty()) return;
  const bool fits = used_ + conversation.ids.size() <= options_.seq_len;
  if (used_ > 0 && (!options_.pack || !fits)) close_bin();
  emit_(conversation.ids, conversation.loss_mask);
  used_ += conversation.ids.size();
  ++counts_.conversations;
  counts_.trained_tokens += conversation.trained_tokens();
}

void ConversationPacker::close_bin() {
  if (used_ < options_.seq_len) emit_filler(options_.seq_len - used_);
  used_ = 0;
  ++counts_.windows;
}

void ConversationPacker::emit_filler(std::size_t length) {
  const std::vector<std::uint32_t> ids(length, options_.filler_id);
  const std::vector<std::uint8_t> mask(length, 0);
  emit_(ids, mask);
  counts_.filler_tokens += length;
}

void ConversationPacker::finish() {
  if (used_ == 0 && counts_.windows == 0) return;  // nothing written: an empty split stays empty
  if (used_ > 0) close_bin();
  // Window w's targets run to token (w + 1) * seq_len, the first token of the next bin.
  emit_filler(1);
}

}  // namespace kiln::chat
