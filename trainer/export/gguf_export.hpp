#pragma once
// `kiln export --format gguf --dtype f32|f16|bf16|q8_0`: one GGUF v3 file llama.cpp runs.
//
// Architecture metadata ("llama" or "gpt2"): context_length, embedding_length, block_count,
// feed_forward_length, attention.head_count(_kv), the norm epsilon, and for llama
// rope.freq_base, rope.dimension_count; tokenizer keys from gguf_tokenizer.hpp.
//
// Tensors, by llama.cpp's names and layouts (ggml dims are reversed: a kiln [out, in] weight
// is ne = {in, out}, the same bytes):
//   token_embd, output_norm, output (untied only), blk.i.{attn_norm, ffn_norm, attn_output,
//   ffn_up, ffn_down}
//   llama: blk.i.{attn_q, attn_k, attn_v, ffn_gate}; rope_freqs (llama3 scaling: the per-
//          frequency divisors llama.cpp applies, as its converter computes them)
//   gpt2:  position_embd, blk.i.attn_qkv (q|k|v fused rows, as kiln's GEMM), biases
// llama.cpp's llama RoPE rotates adjacent pairs (2i, 2i+1) while kiln (and HF) rotate
// (i, i + Dh/2), so the rows of every q and k head are permuted to interleave the halves, as
// llama.cpp's converter does for HF checkpoints. Norms, biases, position embeddings and
// rope_freqs stay F32; a matrix whose rows are not a multiple of 32 cannot be Q8_0 and is
// written F16 instead (counted in the result).
#include <filesystem>

#include "trainer/export/export_source.hpp"

namespace kiln::interop {

struct GgufExportOptions {
  std::filesystem::path out_file;
  ExportDtype dtype = ExportDtype::f16;
};

struct GgufExportResult {
  std::size_t tensors = 0;
  std::size_t f16_fallbacks = 0;  // matrices Q8_0 could not hold
  std::uint64_t bytes = 0;
};

GgufExportResult export_gguf(const ExportSource& source, const GgufExportOptions& options);

// Rows of a [n_heads * head_dim, C] q or k weight reordered from rotate_half pairs (i, i + Dh/2)
// to adjacent pairs (2i, 2i + 1): new row h*Dh + 2i + j = old row h*Dh + j*Dh/2 + i.
std::vector<float> interleave_rope_rows(const std::vector<float>& weight, std::int64_t n_heads, std::int64_t head_dim,
                                        std::int64_t columns);

}  // namespace kiln::interop
