#include "parallel/context_parallel.hpp"

#include <algorithm>
#include <utility>

#include "kernels/ops.hpp"
#include "trainer/core/error.hpp"

namespace kiln::parallel {

// ---- ContextChunks -----------------------------------------------------------------------------

ContextChunks::ContextChunks(const std::vector<std::int64_t>& doc_ids, std::int64_t rows, std::int64_t seq_len,
                             int ranks)
    : ranks_(ranks), rows_(rows) {
  if (ranks < 1 || seq_len % (2 * ranks) != 0)
    fail("context parallelism: a sequence of {} tokens cannot be cut into 2 x cp = {} equal chunks. Fix: make "
         "train.seq_len a multiple of {}",
         seq_len, 2 * ranks, 2 * ranks);
  if (!doc_ids.empty() && static_cast<std::int64_t>(doc_ids.size()) != rows * seq_len)
    fail("context parallelism: {} document ids for [{}, {}]", doc_ids.size(), rows, seq_len);
  chunk_ = seq_len / (2 * ranks);
  run_start_.assign(static_cast<std::size_t>(rows * 2 * ranks), 0);
  first_run_.assign(run_start_.size(), chunk_);
  if (doc_ids.empty()) return;  // one document per row: it starts at 0 and fills every chunk
  for (std::int64_t b = 0; b < rows; ++b) {
    const std::int64_t* doc = doc_ids.data() + b * seq_len;
    std::int64_t start = 0;  // of the run holding the current position
    for (std::int64_t t = 0; t < seq_len; ++t) {
      if (t > 0 && doc[t] != doc[t - 1]) start = t;
      if (t % chunk_ == 0) run_start_[index(b, static_cast<int>(t / chunk_))] = start;
    }
    for (int g = 0; g < 2 * ranks; ++g) {
      const std::int64_t first = g * chunk_;
      std::int64_t length = 1;
      while (length < chunk_ && doc[first + length] == doc[first]) ++length;
      first_run_[index(b, g)] = length;
    }
  }
}

template <class T>
std::vector<T> ContextChunks::take(const std::vector<T>& values, int rank) const {
  const std::int64_t seq_len = 2 * ranks_ * chunk_;
  if (static_cast<std::int64_t>(values.size()) != rows_ * seq_len)
    fail("context parallelism: {} values for [{}, {}]", values.size(), rows_, seq_len);
  std::vector<T> local;
  local.reserve(static_cast<std::size_t>(rows_ * 2 * chunk_));
  for (std::int64_t b = 0; b < rows_; ++b)
    for (int part = 0; part < 2; ++part) {
      const auto first = values.begin() + b * seq_len + global_chunk(rank, part) * chunk_;
      local.insert(local.end(), first, first + chunk_);
    }
  return local;
}

template std::vector<std::uint32_t> ContextChunks::take(const std::vector<std::uint32_t>&, int) const;
template std::vector<std::uint8_t> ContextChunks::take(const std::vector<std::uint8_t>&, int) const;
template std::vector<std::int64_t> ContextChunks::take(const std::vector<std::int64_t>&, int) const;

// ---- RingAttention -----------------------------------------------------------------------------

namespace {

// Row b, tokens [first, first + count) of a [B, T, ...] tensor.
Tensor rows_of(const Tensor& x, std::int64_t b, std::int64_t first, std::int64_t count) {
  return x.narrow(0, b, 1).narrow(1, first, count);
}

// Row b, queries [first, first + count) of a [B, H, T] statistics tensor.
Tensor stats_of(const Tensor& lse, std::int64_t b, std::int64_t first, std::int64_t count) {
  return lse.narrow(0, b, 1).narrow(2, first, count);
}

// The first `count` positions of a one-row scratch [1, c, H, D] or [1, H, c] (as a contiguous
// [1, H, count]: statistics are laid out head-major, so the prefix is re-viewed, not narrowed).
Tensor head_prefix(const Tensor& scratch, std::int64_t count) { return scratch.narrow(1, 0, count); }
Tensor stats_prefix(const Tensor& flat, std::int64_t heads, std::int64_t count) {
  return flat.narrow(0, 0, heads * count).reshape({1, heads, count});
}

const ops::AttentionOptions kCausal{.causal = true};
const ops::AttentionOptions kFull{.causal = false};

}  // namespace

// Buffers of one shape (B, c, heads, dims), planned in one arena.
struct RingAttention::Scratch {
  explicit Scratch(memory::Allocator& allocator) : arena(memory::MemoryCategory::communication, allocator) {}
  memory::Arena arena;
  Shape key_shape;           // the local block's [B, 2c, Hkv, D]
  Tensor kv[2], dkv[2];      // [2, B, 2c, Hkv, D]: the block held and the one arriving
  Tensor part, dq_part;      // [1, c, Hq, D]
  Tensor dk_part, dv_part;   // [1, c, Hkv, D]
  Tensor part_lse, lse_rows;  // [Hq * c] flat: re-viewed as [1, Hq, n]
  Tensor dq_sum;             // [B, 2c, Hq, D]
};

RingAttention::RingAttention(Communicator* cp, memory::Allocator& allocator) : cp_(cp), allocator_(&allocator) {}

RingAttention::Scratch& RingAttention::scratch_for(const Tensor& q, const Tensor& k) {
  const std::int64_t B = q.size(0), T = q.size(1), Hq = q.size(2), Hkv = k.size(2), D = q.size(3), c = T / 2;
  const Shape key_shape{B, T, Hkv, D};
  if (scratch_ && scratch_->key_shape == key_shape && scratch_->dq_sum.shape == q.shape &&
      scratch_->dq_sum.dtype == q.dtype)
    return *scratch_;
  if (!scratch_) scratch_ = std::make_shared<Scratch>(*allocator_);
  memory::ArenaPlan plan;
  const Shape block{2, B, T, Hkv, D};
  memory::ArenaSlot kv[2], dkv[2];
  for (int i = 0; i < 2; ++i) {
    kv[i] = plan.reserve("ring_kv", q.dtype, block);
    dkv[i] = plan.reserve("ring_dkv", q.dtype, block);
  }
  const auto part = plan.reserve("ring_part", q.dtype, {1, c, Hq, D});
  const auto dq_part = plan.reserve("ring_dq_part", q.dtype, {1, c, Hq, D});
  const auto dk_part = plan.reserve("ring_dk_part", q.dtype, {1, c, Hkv, D});
  const auto dv_part = plan.reserve("ring_dv_part", q.dtype, {1, c, Hkv, D});
  const auto part_lse = plan.reserve("ring_part_lse", q.dtype, {Hq * c});
  const auto lse_rows = plan.reserve("ring_lse_rows", q.dtype, {Hq * c});
  const auto dq_sum = plan.reserve("ring_dq_sum", q.dtype, q.shape);
  Scratch& s = *scratch_;
  s.arena.allocate(std::move(plan));
  for (int i = 0; i < 2; ++i) s.kv[i] = s.arena.view(kv[i]), s.dkv[i] = s.arena.view(dkv[i]);
  s.part = s.arena.view(part), s.dq_part = s.arena.view(dq_part);
  s.dk_part = s.arena.view(dk_part), s.dv_part = s.arena.view(dv_part);
  s.part_lse = s.arena.view(part_lse), s.lse_rows = s.arena.view(lse_rows);
  s.dq_sum = s.arena.view(dq_sum);
  s.key_shape = key_shape;
  return s;
}

namespace {

// What one step of the ring works on: this rank's queries and the key block of rank `owner`.
struct RingStep {
  const ContextChunks& chunks;
  int rank, owner;
  Tensor q, doc_ids;  // this rank's
  Tensor k, v;        // the block's, [B, 2c, Hkv, D]
};

// A query range of this rank's local chunk `local_q` over a key range of the block's local
// chunk `local_k`: rows [q_first, q_first + q_count), keys [k_first, c) of row b.
struct Piece {
  std::int64_t b;
  int local_q, local_k;
  std::int64_t q_first, q_count, k_first;
  bool diagonal;  // the chunk over itself: causal, with its documents
};

// Every piece of attention this step contributes, in a fixed order (so sums are deterministic).
template <class Visit>
void for_each_piece(const RingStep& step, Visit&& visit) {
  const ContextChunks& chunks = step.chunks;
  const std::int64_t c = chunks.chunk();
  for (std::int64_t b = 0; b < chunks.rows(); ++b)
    for (int local_q = 0; local_q < 2; ++local_q)
      for (int nth = 0; nth < 2; ++nth) {
        // The chunk over itself first: its piece sets the running state the others merge into.
        const int local_k = nth == 0 ? local_q : 1 - local_q;
        const int gi = chunks.global_chunk(step.rank, local_q), gj = chunks.global_chunk(step.owner, local_k);
        if (gi == gj) {
          visit(Piece{b, local_q, local_k, 0, c, 0, true});
          continue;
        }
        if (gj > gi) continue;  // a later chunk: causal attention sees none of it
        // Only the chunk's first document can reach back, and it sees the key chunk from its
        // own start on: full attention of those queries over that tail, cut so that no call
        // has more queries than keys (the kernels' contract).
        const std::int64_t start = chunks.run_start(b, gi);
        if (start >= (gj + 1) * c) continue;
        const std::int64_t k_first = std::max<std::int64_t>(0, start - gj * c), keys = c - k_first;
        const std::int64_t queries = chunks.first_run(b, gi);
        for (std::int64_t first = 0; first < queries; first += keys)
          visit(Piece{b, local_q, local_k, first, std::min(keys, queries - first), k_first, false});
      }
}

struct PieceViews {
  Tensor q, k, v, doc_ids;
  std::int64_t q_row, k_row, keys;  // first local query, first block key, key count
};

PieceViews views_of(const RingStep& step, const Piece& piece) {
  const std::int64_t c = step.chunks.chunk();
  PieceViews views;
  views.q_row = piece.local_q * c + piece.q_first;
  views.k_row = piece.local_k * c + piece.k_first;
  views.keys = c - piece.k_first;
  views.q = rows_of(step.q, piece.b, views.q_row, piece.q_count);
  views.k = rows_of(step.k, piece.b, views.k_row, views.keys);
  views.v = rows_of(step.v, piece.b, views.k_row, views.keys);
  if (piece.diagonal && step.doc_ids.defined()) views.doc_ids = rows_of(step.doc_ids, piece.b, views.q_row, c);
  return views;
}

}  // namespace

void RingAttention::forward(Tensor out, Tensor lse, Tensor q, Tensor k, Tensor v, Tensor doc_ids,
                            const ContextChunks& chunks) {
  Scratch& s = scratch_for(q, k);
  const int ranks = cp_->size(), rank = cp_->rank();
  const std::int64_t heads = q.size(2);
  int held = 0;
  ops::copy(s.kv[held].select(0), k);
  ops::copy(s.kv[held].select(1), v);
  for (int hop = 0; hop < ranks; ++hop) {
    // The next block travels while this one is computed on.
    CollectiveHandle next;
    if (hop + 1 < ranks)
      next = cp_->send_recv_async(s.kv[held], (rank + 1) % ranks, s.kv[1 - held], (rank + ranks - 1) % ranks);
    const RingStep step{chunks, rank, (rank + ranks - hop) % ranks, q, doc_ids, s.kv[held].select(0), s.kv[held].select(1)};
    for_each_piece(step, [&](const Piece& piece) {
      const PieceViews views = views_of(step, piece);
      const Tensor part = head_prefix(s.part, piece.q_count), part_lse = stats_prefix(s.part_lse, heads, piece.q_count);
      ops::flash_attention_forward(part, part_lse, views.q, views.k, views.v, views.doc_ids,
                                   piece.diagonal ? kCausal : kFull);
      const Tensor out_rows = rows_of(out, piece.b, views.q_row, piece.q_count);
      const Tensor lse_rows = stats_of(lse, piece.b, views.q_row, piece.q_count);
      if (piece.diagonal) {  // the first piece of these queries: it sets their running state
        ops::copy(out_rows, part);
        ops::copy(lse_rows, part_lse);
      } else {
        ops::merge_attention(out_rows, lse_rows, part, part_lse);
      }
    });
    if (hop + 1 < ranks) next.wait();
    held = 1 - held;
  }
}

void RingAttention::backward(Tensor dq, Tensor dk, Tensor dv, Tensor dout, Tensor q, Tensor k, Tensor v, Tensor out,
                             Tensor lse, Tensor doc_ids, const ContextChunks& chunks) {
  Scratch& s = scratch_for(q, k);
  const int ranks = cp_->size(), rank = cp_->rank(), next_rank = (rank + 1) % ranks,
            previous_rank = (rank + ranks - 1) % ranks;
  const std::int64_t heads = q.size(2);
  int held = 0;
  ops::copy(s.kv[held].select(0), k);
  ops::copy(s.kv[held].select(1), v);
  ops::zero(s.dkv[held]);
  ops::zero(s.dq_sum);
  for (int hop = 0; hop < ranks; ++hop) {
    CollectiveHandle next;
    if (hop + 1 < ranks) next = cp_->send_recv_async(s.kv[held], next_rank, s.kv[1 - held], previous_rank);
    const RingStep step{chunks, rank, (rank + ranks - hop) % ranks, q, doc_ids, s.kv[held].select(0), s.kv[held].select(1)};
    const Tensor dk_block = s.dkv[held].select(0), dv_block = s.dkv[held].select(1);
    for_each_piece(step, [&](const Piece& piece) {
      const PieceViews views = views_of(step, piece);
      // The saved statistics of these queries, contiguous as the kernels take them.
      const Tensor piece_lse = stats_prefix(s.lse_rows, heads, piece.q_count);
      ops::copy(piece_lse, stats_of(lse, piece.b, views.q_row, piece.q_count));
      const Tensor dq_part = head_prefix(s.dq_part, piece.q_count);
      const Tensor dk_part = head_prefix(s.dk_part, views.keys), dv_part = head_prefix(s.dv_part, views.keys);
      ops::flash_attention_backward(dq_part, dk_part, dv_part, rows_of(dout, piece.b, views.q_row, piece.q_count),
                                    views.q, views.k, views.v, rows_of(out, piece.b, views.q_row, piece.q_count),
                                    piece_lse, views.doc_ids, piece.diagonal ? kCausal : kFull);
      ops::add_to(rows_of(s.dq_sum, piece.b, views.q_row, piece.q_count), dq_part);
      ops::add_to(rows_of(dk_block, piece.b, views.k_row, views.keys), dk_part);
      ops::add_to(rows_of(dv_block, piece.b, views.k_row, views.keys), dv_part);
    });
    if (hop + 1 < ranks) next.wait();
    // The block's gradients travel on with it; after the last hop they reach its owner, and
    // this rank receives its own block's from its predecessor.
    cp_->send_recv(s.dkv[held], next_rank, s.dkv[1 - held], previous_rank);
    held = 1 - held;
  }
  ops::copy(dq, s.dq_sum);
  ops::copy(dk, s.dkv[held].select(0));
  ops::copy(dv, s.dkv[held].select(1));
}

}  // namespace kiln::parallel
