#pragma once
// The parameter registry (DESIGN.md §5, §6): every model parameter with its canonical global
// name, global shape, tensor-parallel split rule, weight-decay flag and initialisation rule,
// stored (llm.c style) in one flat buffer of values and one flat buffer of gradients, each
// the single slot of a memory::Arena (categories parameters and gradients).
//
// Precision: values are f32 (training), f64 (gradient checks) or bf16 (mixed precision, the
// working copy the model reads; the fp32 masters live in the optimizer). Gradients are f32
// whenever values are bf16: they accumulate over micro-batches and are reduced over dp, which
// bf16 would do without its small terms. Otherwise gradients share the values' dtype.
//
// Canonical names (i = block index, 0-based):
//   embed.weight                 [Vp, C]      vocab     decay   token embedding
//   pos_embed.weight             [S, C]       repl.     decay   gpt2 only (S = max_seq_len)
//   blocks.i.attn_norm.weight    [C]          repl.     -       ones
//   blocks.i.attn_norm.bias      [C]          repl.     -       gpt2 only
//   blocks.i.attn.q.weight       [Hq*Dh, C]   column    decay  \  stored contiguously as the
//   blocks.i.attn.k.weight       [Hkv*Dh, C]  column    decay   > fused GEMM weight
//   blocks.i.attn.v.weight       [Hkv*Dh, C]  column    decay  /  "blocks.i.attn.qkv.weight"
//   blocks.i.attn.{q,k,v}.bias   [..]         column    -       gpt2 only; fused "attn.qkv.bias"
//   blocks.i.attn.out.weight     [C, Hq*Dh]   row       decay   std / sqrt(2 n_layers)
//   blocks.i.attn.out.bias       [C]          repl.     -       gpt2 only
//   blocks.i.mlp_norm.weight     [C]          repl.     -
//   blocks.i.mlp_norm.bias       [C]          repl.     -       gpt2 only
//   blocks.i.mlp.gate.weight     [F, C]       column    decay   llama only  \ fused
//   blocks.i.mlp.up.weight       [F, C]       column    decay               / "mlp.gate_up.weight"
//   blocks.i.mlp.up.bias         [F]          column    -       gpt2 only
//   blocks.i.mlp.down.weight     [C, F]       row       decay   std / sqrt(2 n_layers)
//   blocks.i.mlp.down.bias       [C]          repl.     -       gpt2 only
//   final_norm.weight            [C]          repl.     -
//   final_norm.bias              [C]          repl.     -       gpt2 only
//   lm_head.weight               [Vp, C]      vocab     decay   only when embeddings are untied
// Weights are in PyTorch Linear layout [out, in]. Vp is the padded vocabulary: rows
// [vocab_size, Vp) of embed/lm_head are zero, get zero gradient, and are not part of the
// model's function; `valid_rows` / export_shape() give the real extent, which checkpoints and
// exporters keep. Weight decay applies to every matrix (>= 2 dims), never to norms or biases.
//
// The registry order is the flat-buffer order; q|k|v and gate|up are adjacent, so the fused
// GEMM weight is a contiguous [rows, C] view while each logical tensor is a view too.
//
// Under a ParallelPlacement (DESIGN.md §6) a store holds only what its rank owns:
// - pipeline: embed (and gpt2's pos_embed) on the first stage, the blocks of
//   stage_layers(n_layers, pp, pp_rank) (global block indices in the names), final_norm and
//   lm_head on the last stage. With tied embeddings and pp > 1 the last stage also holds
//   "embed.weight" for its head (same name, same values, `tied_copy` set); the trainer sums
//   its gradient with the first stage's and counts the parameter once.
// - tensor parallel: every entry is this tp rank's shard, by its split rule. `shape` is the
//   local shard, `global_shape` the whole (padded) tensor and `global_offset` where the
//   shard's element [0, 0] sits in it:
//     column  rows [r * out/tp, (r+1) * out/tp)      (weights [out, in] and their biases)
//     row     columns [r * in/tp, (r+1) * in/tp)
//     vocab   rows [r * Vp/tp, (r+1) * Vp/tp); `valid_rows` counts the shard's real leading
//             rows (vocab_size - offset, clamped to [0, Vp/tp]: a shard may hold padding only)
//     replicated  all of it; every tp rank holds the same values and, since the model
//             all-reduces the input gradients of its column-parallel layers, computes the
//             same gradient: count such a parameter once over tp.
//   The fused q|k|v of a rank is its Hq/tp query heads, then its Hkv/tp kv heads of k, then
//   of v; gate|up is its F/tp gate rows, then its F/tp up rows: one GEMM each, as serially.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/memory/arena.hpp"
#include "kernels/tensor.hpp"
#include "trainer/model/model_config.hpp"

namespace kiln::model {

// How tensor parallelism splits a parameter (Megatron): column = output dim (rows of an
// [out, in] weight, and its bias), row = input dim (columns), vocab = vocabulary rows,
// replicated = every tp rank holds all of it.
enum class TpSplit : std::uint8_t { replicated, column, row, vocab };
std::string_view tp_split_name(TpSplit split);

enum class InitKind : std::uint8_t {
  normal,           // N(0, init_std^2)
  normal_residual,  // N(0, (init_std / sqrt(2 n_layers))^2): projections into the residual
  zeros,
  ones,
};

struct ParameterInfo {
  std::string name;
  Shape shape;              // local stored shape: this rank's shard (vocab tables padded)
  std::int64_t valid_rows;  // leading local rows that are real model parameters
  TpSplit split = TpSplit::replicated;
  bool weight_decay = false;
  InitKind init = InitKind::normal;
  std::int64_t offset = 0;             // elements into the flat buffers
  std::string fused_into;              // name of the fused GEMM tensor it is part of, or empty
  Shape global_shape;                  // the whole tensor over all tp ranks (vocab tables padded)
  Shape global_offset;                 // index of local element [0, ...] in the global tensor
  std::int64_t global_valid_rows = 0;  // real rows of the global tensor (vocab_size for tables)
  bool tied_copy = false;  // last stage's copy of the tied embed.weight (pp > 1), see above

  std::int64_t numel() const { return shape.numel(); }
  // The global shape without vocabulary padding: what checkpoints and exports contain. This
  // shard is the region {global_offset, shape with rows = valid_rows} of it.
  Shape export_shape() const;
  bool is_sharded() const { return shape != global_shape; }
};

// A fused GEMM tensor (q|k|v or gate|up): consecutive registry entries in one view.
struct FusedInfo {
  std::string name;  // e.g. "blocks.0.attn.qkv.weight"
  Shape shape;
  std::int64_t offset = 0;
};

class ParameterStore {
 public:
  // Values and gradients zero. Registers what `placement` owns (all of it by default); a
  // placement with tp_size > 1 and no communicator is fine here (shapes only).
  // Values and gradients live in memory from `allocator` (host, or the CUDA device).
  ParameterStore(const ModelConfig& config, DType dtype, const ParallelPlacement& placement = {},
                 memory::Allocator& allocator = memory::host_allocator());

  ParameterStore(const ParameterStore&) = delete;
  ParameterStore& operator=(const ParameterStore&) = delete;
  ParameterStore(ParameterStore&&) = default;
  ParameterStore& operator=(ParameterStore&&) = default;

  DType dtype() const { return dtype_; }            // of the values
  Device device() const { return values_.device(); }
  memory::Allocator& allocator() const { return *allocator_; }
  DType grad_dtype() const { return grad_dtype_; }  // of the gradients
  const ParallelPlacement& placement() const { return placement_; }
  LayerRange layers() const { return layers_; }  // the blocks this store holds
  std::int64_t numel() const { return numel_; }  // flat buffer length, padding included
  const std::vector<ParameterInfo>& infos() const { return infos_; }
  std::size_t size() const { return infos_.size(); }

  std::optional<std::size_t> find(std::string_view name) const;
  // Throws kiln::Error naming the unknown parameter.
  std::size_t index(std::string_view name) const;
  const ParameterInfo& info(std::string_view name) const { return infos_[index(name)]; }
  bool contains(std::string_view name) const { return find(name).has_value(); }

  // Views of one parameter (its local stored shape) and its gradient.
  Tensor value(std::size_t index) const;
  Tensor grad(std::size_t index) const;
  Tensor value(std::string_view name) const { return value(index(name)); }
  Tensor grad(std::string_view name) const { return grad(index(name)); }

  // Views of a fused GEMM tensor ("blocks.0.attn.qkv.weight", "blocks.0.mlp.gate_up.weight").
  const FusedInfo& fused_info(std::string_view name) const;
  Tensor fused_value(std::string_view name) const;
  Tensor fused_grad(std::string_view name) const;
  const std::vector<FusedInfo>& fused() const { return fused_; }

  // The whole flat buffers, [numel].
  Tensor values() const;
  Tensor grads() const;
  void zero_grads() const;

 private:
  void add(ParameterInfo info);
  void add_fused(std::string name, std::size_t first, std::size_t count);
  void register_block(const ModelConfig& config, std::int64_t layer);
  ParameterInfo shard(ParameterInfo global) const;
  void allocate_storage();
  static Tensor view(const Tensor& flat, std::int64_t offset, const Shape& shape);

  DType dtype_;
  DType grad_dtype_;
  ParallelPlacement placement_;
  LayerRange layers_;
  std::int64_t numel_ = 0;
  std::vector<ParameterInfo> infos_;
  std::vector<FusedInfo> fused_;
  std::map<std::string, std::size_t, std::less<>> by_name_;
  // One flat [numel] slot each: parameter memory and gradient memory are separate arenas so
  // the memory report tells them apart (and a device backend may place them differently).
  memory::Allocator* allocator_;
  memory::Arena values_;
  memory::Arena grads_;
  Tensor values_flat_;
  Tensor grads_flat_;
};

}  // namespace kiln::model
