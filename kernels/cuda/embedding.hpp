#pragma once
// Token (+ learned position) embedding on the device, forward and backward.
//   ids [rows] i32, table [table_rows, channels] holding vocabulary rows
//   first_id .. first_id + table_rows - 1 (a vocab-parallel shard; first_id = 0 otherwise)
//   forward:  out [rows, channels] = table[ids - first_id] (+ positions[position_ids]),
//             zero for an id outside the shard, as ops::embedding_forward_vocab_parallel.
//             f32, or bf16 storage: the token and position rows are added in fp32 and the
//             sum rounded once (the CPU op's two passes round twice).
//   backward: dtable [table_rows, channels] f32 += the rows of dout [rows, channels] (f32 or
//             bf16) whose id falls in the shard, summed per table element in token order, so
//             the result is bitwise that of the CPU op in f32 and independent of the launch.
// Ids are not range-checked on the device (a kernel cannot raise): the strict
// ops::embedding_forward check is the caller's, on the host side of the batch.
#include <cstdint>

#include "kernels/cuda/cuda_compat.cuh"

namespace kiln::KILN_CUDA_NS {

// Optional learned positions (GPT-2): out += positions[position_ids[r]], position_ids [rows]
// i32 in [0, position_rows). Both null for token embeddings alone.
template <class T>
struct PositionEmbedding {
  const std::int32_t* position_ids = nullptr;
  const T* table = nullptr;
  std::int64_t position_rows = 0;
};

void embedding_forward(float* out, const std::int32_t* ids, const float* table, std::int64_t table_rows,
                       std::int64_t first_id, std::int64_t rows, std::int64_t channels,
                       PositionEmbedding<float> positions, cudaStream_t stream);
void embedding_forward(__nv_bfloat16* out, const std::int32_t* ids, const __nv_bfloat16* table,
                       std::int64_t table_rows, std::int64_t first_id, std::int64_t rows, std::int64_t channels,
                       PositionEmbedding<__nv_bfloat16> positions, cudaStream_t stream);

// Also the backward of the position table: pass position_ids as ids, first_id 0.
void embedding_backward(float* dtable, std::int64_t table_rows, const float* dout, const std::int32_t* ids,
                        std::int64_t first_id, std::int64_t rows, std::int64_t channels, cudaStream_t stream);
void embedding_backward(float* dtable, std::int64_t table_rows, const __nv_bfloat16* dout, const std::int32_t* ids,
                        std::int64_t first_id, std::int64_t rows, std::int64_t channels, cudaStream_t stream);

}  // namespace kiln::KILN_CUDA_NS
