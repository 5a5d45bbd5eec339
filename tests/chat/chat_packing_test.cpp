// Packing: every window of seq_len tokens starts at a conversation, the gap is a masked
// filler document, overlong conversations are dropped or truncated and counted, and a last
// token completes the final window.
#include <gtest/gtest.h>

#include <numeric>

#include "data/chat/chat_packing.hpp"
#include "trainer/core/error.hpp"

namespace kiln::chat {
namespace {

constexpr std::uint32_t kFiller = 99;

// A conversation of `length` tokens (ids 1..length) whose last half is trained on.
RenderedConversation conversation(std::size_t length, std::uint32_t first_id = 1) {
  RenderedConversation c;
  c.ids.resize(length);
  std::iota(c.ids.begin(), c.ids.end(), first_id);
  c.loss_mask.assign(length, 0);
  for (std::size_t i = length / 2; i < length; ++i) c.loss_mask[i] = 1;
  return c;
}

struct Recorded {
  std::vector<std::size_t> document_lengths;
  std::vector<std::uint32_t> ids;
  std::vector<std::uint8_t> mask;
};

Recorded pack(const std::vector<RenderedConversation>& conversations, PackingOptions options, PackingCounts* counts) {
  Recorded recorded;
  ConversationPacker packer(options, [&](std::span<const std::uint32_t> ids, std::span<const std::uint8_t> mask) {
    recorded.document_lengths.push_back(ids.size());
    recorded.ids.insert(recorded.ids.end(), ids.begin(), ids.end());
    recorded.mask.insert(recorded.mask.end(), mask.begin(), mask.end());
  });
  for (const auto& c : conversations) packer.add(c);
  packer.finish();
  *counts = packer.counts();
  return recorded;
}

TEST(ChatPacking, WindowsHoldWholeConversations) {
  PackingCounts counts;
  const auto out = pack({conversation(3), conversation(4), conversation(2), conversation(9), conversation(8)},
                        {8, true, OverlongPolicy::drop, kFiller}, &counts);
  EXPECT_EQ(out.document_lengths, (std::vector<std::size_t>{3, 4, 1, 2, 6, 8, 1}));
  EXPECT_EQ(out.ids.size(), 3u * 8 + 1);
  EXPECT_EQ(counts.conversations, 4u);
  EXPECT_EQ(counts.dropped, 1u);
  EXPECT_EQ(counts.truncated, 0u);
  EXPECT_EQ(counts.windows, 3u);
  EXPECT_EQ(counts.filler_tokens, 8u);
  EXPECT_EQ(counts.trained_tokens, 2u + 2 + 1 + 4);
  // Window starts (0, 8, 16) are conversation starts: id 1, untrained.
  for (std::size_t start : {0u, 8u, 16u}) {
    EXPECT_EQ(out.ids[start], 1u) << start;
    EXPECT_EQ(out.mask[start], 0) << start;
  }
  for (std::size_t i = 0; i < out.ids.size(); ++i) {
    if (out.ids[i] == kFiller) {
      EXPECT_EQ(out.mask[i], 0) << i;
    }
  }
  EXPECT_EQ(out.ids.back(), kFiller);
}

TEST(ChatPacking, UnpackedGivesEachConversationItsWindow) {
  PackingCounts counts;
  const auto out = pack({conversation(3), conversation(4), conversation(8)}, {8, false, OverlongPolicy::drop, kFiller},
                        &counts);
  EXPECT_EQ(out.document_lengths, (std::vector<std::size_t>{3, 5, 4, 4, 8, 1}));
  EXPECT_EQ(counts.windows, 3u);
}

TEST(ChatPacking, TruncatePolicyKeepsTheHeadWhenItTrainsOnSomething) {
  PackingCounts counts;
  RenderedConversation late = conversation(20);  // trained tokens 10..19: none survive a cut at 8
  const auto out = pack({conversation(12), late}, {8, true, OverlongPolicy::truncate, kFiller}, &counts);
  EXPECT_EQ(out.document_lengths, (std::vector<std::size_t>{8, 1}));
  EXPECT_EQ(counts.truncated, 1u);
  EXPECT_EQ(counts.dropped, 1u);
  EXPECT_EQ(counts.trained_tokens, 2u);
}

TEST(ChatPacking, EmptyInputWritesNothing) {
  PackingCounts counts;
  EXPECT_TRUE(pack({}, {8, true, OverlongPolicy::drop, kFiller}, &counts).ids.empty());
  EXPECT_THROW(ConversationPacker({1, true, OverlongPolicy::drop, 0}, {}), Error);
}

}  // namespace
}  // namespace kiln::chat
