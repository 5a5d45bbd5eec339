#include "trainer/plan/cp_and_recompute.hpp"

#include <array>
#include <charconv>

namespace kiln::plan {

namespace {

// The slots a selective recompute keeps: the block's output (the next block's input), the
// residual after attention and the attention output with its logsumexp (the costly part to
// recompute). Full recompute keeps only the output.
constexpr std::array<std::string_view, 4> kKeptBySelective{"out", "mid", "attn", "attn_lse"};

std::uint64_t footprint(const memory::ArenaPlan::Entry& entry) {
  return (entry.bytes + entry.alignment - 1) / entry.alignment * entry.alignment;
}

struct BlockSlot {
  std::int64_t block = -1;  // -1: not a block's slot
  std::string_view slot;
};

// "blocks.3.qkv" -> {3, "qkv"}.
BlockSlot block_slot_of(std::string_view name) {
  constexpr std::string_view kPrefix = "blocks.";
  if (!name.starts_with(kPrefix)) return {};
  name.remove_prefix(kPrefix.size());
  const auto dot = name.find('.');
  if (dot == std::string_view::npos) return {};
  BlockSlot result;
  const auto [end, error] = std::from_chars(name.data(), name.data() + dot, result.block);
  if (error != std::errc{} || end != name.data() + dot) return {};
  result.slot = name.substr(dot + 1);
  return result;
}

}  // namespace

std::int64_t tokens_per_rank(std::int64_t seq_len, int cp) { return seq_len / cp; }

std::uint64_t context_ring_buffer_bytes(const model::StageDims& dims, std::int64_t micro_batch_size,
                                        std::int64_t seq_len, int cp, std::size_t value_size) {
  if (cp == 1) return 0;
  const auto block = static_cast<std::uint64_t>(micro_batch_size * tokens_per_rank(seq_len, cp) * 2 * dims.kv_dim());
  return 4 * block * value_size;
}

double context_ring_bytes_per_micro_batch(const model::StageDims& dims, std::int64_t micro_batch_size,
                                          std::int64_t seq_len, int cp, std::size_t value_size) {
  const double kv =
      static_cast<double>(micro_batch_size * seq_len * 2 * dims.kv_dim() * static_cast<std::int64_t>(value_size));
  const double forward = (cp - 1.0) / cp * kv;
  return static_cast<double>(dims.layers) * 3.0 * forward;  // forward, then twice that backward
}

bool recomputes(Recompute recompute, std::string_view block_slot) {
  switch (recompute) {
    case Recompute::none: return false;
    case Recompute::full: return block_slot != "out";
    case Recompute::selective:
      for (const std::string_view kept : kKeptBySelective)
        if (block_slot == kept) return false;
      return true;
  }
  return false;
}

std::uint64_t recompute_savings(const memory::ArenaPlan& plan, Recompute recompute) {
  std::uint64_t dropped = 0, one_block = 0;
  for (const auto& entry : plan.entries()) {
    const BlockSlot at = block_slot_of(entry.name);
    if (at.block < 0 || !recomputes(recompute, at.slot)) continue;
    dropped += footprint(entry);
    if (at.block == 0) one_block += footprint(entry);
  }
  return dropped - one_block;  // one block's worth stays: the one being recomputed
}

double recompute_flops_per_token(const model::ModelConfig& config, Recompute recompute, double block_training_flops) {
  switch (recompute) {
    case Recompute::none: return 0.0;
    case Recompute::selective:
      return 2.0 * static_cast<double>(config.d_model * (config.qkv_dim() + config.mlp_in_dim()));
    case Recompute::full: return block_training_flops / 3.0;
  }
  return 0.0;
}

}  // namespace kiln::plan
