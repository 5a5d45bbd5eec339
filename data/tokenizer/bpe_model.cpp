#include "data/tokenizer/bpe_model.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>

#include "data/tokenizer/byte_level.hpp"
#include "trainer/core/error.hpp"

namespace kiln::tok {

// ---- MergeTable -----------------------------------------------------------------------------

void MergeTable::reserve(std::size_t count) {
  std::size_t capacity = 16;
  while (capacity < count * 2) capacity *= 2;
  if (capacity <= slots_.size()) return;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
  size_ = 0;
  for (const Slot& slot : old) {
    if (slot.key != kEmpty) insert(static_cast<TokenId>(slot.key >> 32), static_cast<TokenId>(slot.key), slot.merge);
  }
}

void MergeTable::grow() { reserve(std::max<std::size_t>(16, size_ + 1)); }

void MergeTable::insert(TokenId left, TokenId right, Merge merge) {
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const std::uint64_t key = pack(left, right);
  for (std::size_t i = slot_of(key);; i = (i + 1) & mask_) {
    Slot& slot = slots_[i];
    if (slot.key == key) {
      slot.merge = merge;
      return;
    }
    if (slot.key == kEmpty) {
      slot = Slot{key, merge};
      ++size_;
      return;
    }
  }
}

// ---- per-thread word cache ------------------------------------------------------------------

namespace {

constexpr std::size_t kMaxCachedWordBytes = 256;
constexpr std::size_t kMaxCachedWords = 1U << 18;

struct TransparentHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};

// Ids of recently seen words. Ids live in one arena; the map holds (offset, count).
struct WordCache {
  std::unordered_map<std::string, std::pair<std::uint32_t, std::uint32_t>, TransparentHash, std::equal_to<>> words;
  std::vector<TokenId> arena;

  void clear() {
    words.clear();
    arena.clear();
  }
};

// A thread keeps caches for a few models at once (e.g. two tokenizers used in turn);
// the least recently used one is recycled.
struct CacheSlot {
  std::uint64_t owner = 0;
  std::uint64_t last_used = 0;
  WordCache cache;
};

WordCache& cache_for(std::uint64_t owner) {
  thread_local std::array<CacheSlot, 4> slots;
  thread_local std::uint64_t clock = 0;
  ++clock;
  CacheSlot* victim = &slots[0];
  for (auto& slot : slots) {
    if (slot.owner == owner) {
      slot.last_used = clock;
      return slot.cache;
    }
    if (slot.last_used < victim->last_used) victim = &slot;
  }
  victim->owner = owner;
  victim->last_used = clock;
  victim->cache.clear();
  return victim->cache;
}

std::uint64_t next_cache_owner() {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}

}  // namespace

// ---- BpeModel -------------------------------------------------------------------------------

std::size_t BpeModel::id_limit_for(std::size_t entries) { return 2 * entries + kIdHoleAllowance; }

// Id tables (here, in the tokenizer and in a model's embedding) are sized by the largest id,
// so that id is checked against what the file holds before anything is allocated for it.
void BpeModel::refuse_ids_beyond_the_vocabulary(const std::vector<std::pair<std::string, TokenId>>& vocab) {
  const std::size_t limit = id_limit_for(vocab.size());
  for (const auto& [token, id] : vocab) {
    if (id >= limit) {
      fail("model.vocab: the token '{}' has the id {}, but the vocabulary has {} entries: expected ids below {} "
           "(2 x entries + {}; kiln sizes its id tables and a model's embedding by the largest id)",
           token, id, vocab.size(), limit, kIdHoleAllowance);
    }
  }
}

BpeModel::BpeModel(std::vector<std::pair<std::string, TokenId>> vocab,
                   std::vector<std::pair<std::string, std::string>> merges, BpeOptions options)
    : merges_(std::move(merges)), options_(std::move(options)), cache_owner_(next_cache_owner()) {
  refuse_ids_beyond_the_vocabulary(vocab);
  token_to_id_.reserve(vocab.size());
  for (auto& [token, id] : vocab) {
    if (id >= id_to_token_.size()) id_to_token_.resize(static_cast<std::size_t>(id) + 1);
    id_to_token_[id] = token;
    if (auto raw = byte_level::decode(token)) {
      if (raw->size() == 1) byte_ids_[static_cast<unsigned char>((*raw)[0])] = id;
      raw_token_to_id_[std::move(*raw)] = id;
    }
    token_to_id_[std::move(token)] = id;
  }
  merge_table_.reserve(merges_.size());
  for (std::size_t rank = 0; rank < merges_.size(); ++rank) {
    const auto& [left, right] = merges_[rank];
    const auto left_id = token_to_id(left);
    const auto right_id = token_to_id(right);
    if (!left_id || !right_id) {
      fail("merge {} ('{} {}') uses the token '{}', which is not in model.vocab", rank, left, right,
           left_id ? right : left);
    }
    const auto result = token_to_id(left + right);
    if (!result) fail("merge {} ('{} {}') makes '{}{}', which is not in model.vocab", rank, left, right, left, right);
    merge_table_.insert(*left_id, *right_id, {static_cast<std::uint32_t>(rank), *result});
  }
  if (options_.unk_token) {
    unk_id_ = token_to_id(*options_.unk_token);
    if (!unk_id_) fail("model.unk_token '{}' is not in model.vocab", *options_.unk_token);
  }
}

std::optional<TokenId> BpeModel::token_to_id(std::string_view token) const {
  const auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(TokenId id) const {
  if (id >= id_to_token_.size() || !id_to_token_[id]) return nullptr;
  return &*id_to_token_[id];
}

std::vector<std::pair<std::string, TokenId>> BpeModel::vocab_by_id() const {
  std::vector<std::pair<std::string, TokenId>> out;
  out.reserve(token_to_id_.size());
  for (const auto& [token, id] : token_to_id_) out.emplace_back(token, id);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second < b.second : a.first < b.first;
  });
  return out;
}

void BpeModel::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  if (options_.ignore_merges) {
    const auto it = raw_token_to_id_.find(word);
    if (it != raw_token_to_id_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  if (word.size() > kMaxCachedWordBytes) {
    merge_word(word, out);
    return;
  }
  WordCache& cache = cache_for(cache_owner_);
  if (const auto it = cache.words.find(word); it != cache.words.end()) {
    const auto [offset, count] = it->second;
    out.insert(out.end(), cache.arena.begin() + offset, cache.arena.begin() + offset + count);
    return;
  }
  const std::size_t first = out.size();
  merge_word(word, out);
  if (cache.words.size() >= kMaxCachedWords) cache.clear();
  const auto offset = static_cast<std::uint32_t>(cache.arena.size());
  cache.arena.insert(cache.arena.end(), out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
  cache.words.emplace(std::string(word), std::make_pair(offset, static_cast<std::uint32_t>(out.size() - first)));
}

namespace {

struct QueuedMerge {
  std::uint32_t rank;
  std::uint32_t position;
  TokenId result;
};

// std heap functions keep the "largest" on top: make that the lowest rank, then leftmost.
bool after(const QueuedMerge& a, const QueuedMerge& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.position > b.position;
}

}  // namespace

// The initial symbols of a word, one per byte. A byte without a token becomes unk (fused
// with the unk before it when fuse_unk) or, with no unk token, is dropped, as in `tokenizers`.
void BpeModel::split_into_bytes(std::string_view word, std::vector<Symbol>& symbols) const {
  std::optional<Symbol> pending_unk;
  const auto push = [&](TokenId id, std::uint32_t bytes) {
    const auto index = static_cast<std::int32_t>(symbols.size());
    symbols.push_back({id, index - 1, index + 1, bytes});
  };
  for (const char c : word) {
    const auto id = byte_ids_[static_cast<unsigned char>(c)];
    if (id) {
      if (pending_unk) push(pending_unk->id, pending_unk->bytes);
      pending_unk.reset();
      push(*id, 1);
    } else if (unk_id_) {
      if (pending_unk && options_.fuse_unk) {
        ++pending_unk->bytes;
      } else {
        if (pending_unk) push(pending_unk->id, pending_unk->bytes);
        pending_unk = Symbol{*unk_id_, 0, 0, 1};
      }
    }
  }
  if (pending_unk) push(pending_unk->id, pending_unk->bytes);
  if (!symbols.empty()) symbols.back().next = -1;
}

void BpeModel::merge_word(std::string_view word, std::vector<TokenId>& out) const {
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<QueuedMerge> queue;
  symbols.clear();
  queue.clear();
  split_into_bytes(word, symbols);

  const auto enqueue = [&](std::size_t position) {
    const auto next = static_cast<std::size_t>(symbols[position].next);
    if (const auto* merge = merge_table_.find(symbols[position].id, symbols[next].id)) {
      queue.push_back({merge->rank, static_cast<std::uint32_t>(position), merge->result});
      std::push_heap(queue.begin(), queue.end(), after);
    }
  };
  for (std::size_t i = 0; i + 1 < symbols.size(); ++i) enqueue(i);

  while (!queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), after);
    const QueuedMerge top = queue.back();
    queue.pop_back();
    Symbol& left = symbols[top.position];
    if (left.bytes == 0 || left.next == -1) continue;
    Symbol& right = symbols[static_cast<std::size_t>(left.next)];
    // Skip entries made stale by an earlier merge of either symbol.
    const auto* current = merge_table_.find(left.id, right.id);
    if (current == nullptr || current->result != top.result) continue;

    left.id = top.result;
    left.bytes += right.bytes;
    right.bytes = 0;
    left.next = right.next;
    if (left.next != -1) symbols[static_cast<std::size_t>(left.next)].prev = static_cast<std::int32_t>(top.position);
    if (left.prev >= 0) enqueue(static_cast<std::size_t>(left.prev));
    if (left.next != -1) enqueue(top.position);
  }
  for (const Symbol& symbol : symbols) {
    if (symbol.bytes != 0) out.push_back(symbol.id);
  }
}

}  // namespace kiln::tok
