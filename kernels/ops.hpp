#pragma once
// kiln::ops — the only door from model code to kernels (DESIGN.md §4, §7).
//
// Every op takes Tensor views, checks shapes and dtypes (throwing kiln::Error with a message
// that names the op and the shapes), and dispatches on device and dtype. One family of ops per
// file pair in kernels/ops/ (matmul, norms, activations, rope, embedding, cross_entropy,
// attention, optimizer, elementwise), their shared checks in kernels/ops/op_args.hpp. The CPU backend
// runs in f32 (training) and f64 (gradient checks) from the same templated code; CUDA
// dispatch slots into the same functions (today a CUDA tensor gets a clear error).
//
// Conventions
// - Outputs come first, then inputs, then options (llm.c order).
// - All floating tensors of one op share one dtype (F32 or F64), including the statistics an
//   op saves for its backward (mean, rstd, lse) -- or, for mixed-precision training, mix F32
//   and BF16 storage (fp32 math, one rounding per bf16 output), with parameter gradients F32;
//   the exact rule is in kernels/ops/bf16_staging.hpp.
// - Index tensors (token ids, targets, positions, document ids) may be I32, U32, I64 or U16
//   (the token dataset stores U16 when the vocabulary fits).
//   Masks are U8 (non-zero = keep).
// - "[..., C]" means any leading dims, flattened to rows: N = numel / C. Such tensors must
//   have a unit inner stride and leading dims that flatten to one row stride (contiguous,
//   or a column slice of a wider contiguous buffer, e.g. the gate half of a fused GEMM).
// - Backward passes ACCUMULATE into parameter gradients (dW += ...) so micro-batches add up.
//   Input gradients (dx) are overwritten unless Accumulate::Yes is passed (llm.c adds into
//   the residual stream's gradient).
// - An undefined Tensor (Tensor{}) marks an optional input (no bias, no mask, no document
//   ids) or a gradient that is not wanted.
// - In-place: where noted, an output may be the same view as an input.

#include "kernels/ops/matmul.hpp"
#include "kernels/ops/norms.hpp"
#include "kernels/ops/activations.hpp"
#include "kernels/ops/rope.hpp"
#include "kernels/ops/embedding.hpp"
#include "kernels/ops/cross_entropy.hpp"
#include "kernels/ops/attention.hpp"
#include "kernels/ops/optimizer.hpp"
#include "kernels/ops/elementwise.hpp"
