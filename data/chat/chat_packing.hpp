#pragma once
// Packs rendered conversations into training windows (DESIGN.md §5, §8).
//
// kiln's loader cuts a split's token stream into windows whose inputs are tokens
// [w * seq_len, (w + 1) * seq_len). The packer lays conversations out so that each such bin
// holds whole conversations only: a conversation that does not fit in the current bin's free
// space starts the next bin, and the gap is closed with a filler document (the filler id
// repeated, loss mask 0). Every conversation and every filler is its own document, so with
// `data.packed: true` attention never crosses a conversation and positions restart at 0 in
// each. A final one-token filler completes the last window's last target.
//
// Without packing, every conversation gets a bin of its own. A conversation longer than
// seq_len is dropped, or truncated to seq_len tokens (then dropped only if no trained token
// is left), as the policy says; both are counted.
#include <cstdint>
#include <functional>
#include <span>

#include "data/chat/chat_renderer.hpp"

namespace kiln::chat {

enum class OverlongPolicy { drop, truncate };

struct PackingOptions {
  std::size_t seq_len = 0;
  bool pack = true;  // several conversations per window
  OverlongPolicy overlong = OverlongPolicy::drop;
  std::uint32_t filler_id = 0;  // usually the tokenizer's end-of-text token
};

struct PackingCounts {
  std::uint64_t conversations = 0;  // written to the dataset
  std::uint64_t truncated = 0;      // written, cut to seq_len
  std::uint64_t dropped = 0;        // longer than seq_len and not written
  std::uint64_t windows = 0;        // bins of seq_len tokens
  std::uint64_t filler_tokens = 0;
  std::uint64_t trained_tokens = 0;  // loss-mask ones
  PackingCounts& operator+=(const PackingCounts& other);
};

class ConversationPacker {
 public:
  // Receives each document (conversation or filler) in stream order.
  using Emit = std::function<void(std::span<const std::uint32_t> ids, std::span<const std::uint8_t> loss_mask)>;

  ConversationPacker(PackingOptions options, Emit emit);
  void add(RenderedConversation conversation);
  // Closes the last bin; call once, after the last add().
  void finish();
  const PackingCounts& counts() const { return counts_; }

 private:
  void close_bin();
  void emit_filler(std::size_t length);

  PackingOptions options_;
  Emit emit_;
  std::size_t used_ = 0;  // tokens in the open bin
  PackingCounts counts_;
};

}  // namespace kiln::chat
