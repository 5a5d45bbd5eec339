#pragma once
// The shape of a decoder-only transformer (DESIGN.md §5): one struct for every family, with
// the family deciding the building blocks.
//
//   family  norm       positions          MLP           biases  GQA  embeddings
//   gpt2    LayerNorm  learned pos_embed  GELU (tanh)   yes     no   tied (default)
//   llama   RMSNorm    RoPE (theta, llama3 scaling) SwiGLU  no   yes  tied or untied
//
// Adding a family means adding a row here (its traits) and a name map (name_map.hpp), not a
// new model class.
#include <cstdint>
#include <string_view>

#include "kernels/ops.hpp"

namespace kiln::config {
struct ModelConfig;
}
namespace kiln::parallel {
class Communicator;
}

namespace kiln::model {

enum class Family : std::uint8_t { gpt2, llama };
enum class NormKind : std::uint8_t { layernorm, rmsnorm };
enum class MlpKind : std::uint8_t { gelu, swiglu };

std::string_view family_name(Family family);  // "gpt2", "llama"

// Where one model instance sits in the process grid (DESIGN.md §6). The default is the whole
// model in one process.
struct ParallelPlacement {
  parallel::Communicator* tp = nullptr;  // null or size 1: no tensor parallelism
  int tp_rank = 0, tp_size = 1;
  int pp_rank = 0, pp_size = 1;  // pipeline stage of this instance
  // Megatron sequence parallelism (parallel/tensor_parallel.hpp): outside the tensor-parallel
  // regions this rank holds sequence positions [tp_rank T/tp, (tp_rank + 1) T/tp) only.
  // Meaningful with tp_size > 1 (with one rank its chunk is the whole sequence).
  bool sequence_parallel = false;
  // Context parallelism (parallel/context_parallel.hpp): this rank holds 2 of the 2 x cp_size
  // chunks of every sequence; attention runs around the cp ring. Null or size 1: none.
  parallel::Communicator* cp = nullptr;
  bool first_stage() const { return pp_rank == 0; }
  bool last_stage() const { return pp_rank == pp_size - 1; }
};

// Blocks [first, last) of one pipeline stage.
struct LayerRange {
  std::int64_t first = 0, last = 0;
  std::int64_t count() const { return last - first; }
  bool contains(std::int64_t layer) const { return layer >= first && layer < last; }
  bool operator==(const LayerRange&) const = default;
};

struct ModelConfig {
  Family family = Family::gpt2;
  std::int64_t vocab_size = 0;            // real tokens; ids >= vocab_size never occur
  std::int64_t vocab_pad_multiple = 128;  // embedding/head rows: multiple of this * tp
  std::int64_t tp = 1;                    // tensor-parallel degree the padding is sized for
  std::int64_t d_model = 0;
  std::int64_t n_layers = 0;
  std::int64_t n_heads = 0;
  std::int64_t n_kv_heads = 0;  // 0 = n_heads (no grouped-query attention)
  std::int64_t head_dim = 0;    // 0 = d_model / n_heads
  std::int64_t d_ff = 0;        // MLP hidden width (per gate/up half for SwiGLU)
  std::int64_t max_seq_len = 0;
  double norm_eps = 1e-5;
  ops::RopeConfig rope;  // llama only
  bool tie_embeddings = true;
  double init_std = 0.02;

  // ---- family traits ----
  NormKind norm() const { return family == Family::gpt2 ? NormKind::layernorm : NormKind::rmsnorm; }
  MlpKind mlp() const { return family == Family::gpt2 ? MlpKind::gelu : MlpKind::swiglu; }
  bool has_biases() const { return family == Family::gpt2; }
  bool learned_positions() const { return family == Family::gpt2; }
  bool uses_rope() const { return family == Family::llama; }

  // ---- derived sizes (valid after resolve()) ----
  std::int64_t padded_vocab() const;  // vocab_size rounded up to vocab_pad_multiple * tp
  std::int64_t q_dim() const { return n_heads * head_dim; }
  std::int64_t kv_dim() const { return n_kv_heads * head_dim; }
  std::int64_t qkv_dim() const { return q_dim() + 2 * kv_dim(); }  // fused q|k|v GEMM width
  // Width of the first MLP GEMM: d_ff for GELU, 2 * d_ff for SwiGLU's fused gate|up.
  std::int64_t mlp_in_dim() const { return mlp() == MlpKind::swiglu ? 2 * d_ff : d_ff; }

  // Fills the "0 = derive" fields (n_kv_heads, head_dim) and returns the result, validated.
  ModelConfig resolved() const;
  // Throws kiln::Error naming the field, the value and what is expected.
  void validate() const;
  // Checks that this (resolved) config can be split as `placement` says: heads, kv heads,
  // d_ff and the padded vocabulary divisible by tp, at least one layer per pipeline stage,
  // ranks inside their groups. Throws kiln::Error naming the field and the fix.
  void validate_placement(const ParallelPlacement& placement) const;

  bool operator==(const ModelConfig&) const = default;
};

// Contiguous, balanced layer ranges: every stage gets n_layers / pp_size blocks and the
// remainder goes one block each to the middle stages first (1, 2, ..., pp-2), then to the
// first stage; the last stage, which also runs the head and the loss, never gets an extra
// block. Throws when a stage would get no block (n_layers < pp_size).
LayerRange stage_layers(std::int64_t n_layers, int pp_size, int pp_rank);

// Family presets with the family's conventions filled in (tie, biases are implied by the
// family); sizes still to be set by the caller.
ModelConfig gpt2_config();
ModelConfig llama_config();

// The model part of a recipe, for a given tensor-parallel degree (the vocabulary padding
// depends on it). vocab_size must already be resolved.
ModelConfig from_recipe(const config::ModelConfig& recipe_model, int tp = 1);

// Real parameter count (no vocabulary padding; tied embeddings counted once).
std::int64_t parameter_count(const ModelConfig& config);

// Training FLOPs per token for MFU, PaLM appendix B / Megatron convention:
//   6 N + 12 L H Dh T
// N = parameters that take part in matmuls (all linear weights of the blocks and the LM head
// over the real vocabulary; embedding lookups are free), the second term is QK^T and AV in
// forward + backward, counted without the causal halving (as PaLM, nanoGPT and llm.c do).
double flops_per_token(const ModelConfig& config, std::int64_t seq_len);

}  // namespace kiln::model
