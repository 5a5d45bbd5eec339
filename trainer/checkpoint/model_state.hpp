#pragma once
// The model's and the optimizer's tensors inside a checkpoint, by canonical global name
// (DESIGN.md §9):
//   /model/<parameter name>             the parameter, without vocabulary padding; always fp32
//                                       (a bf16 run stores the optimizer's fp32 masters)
//   /optim/exp_avg/<parameter name>     AdamW first moment
//   /optim/exp_avg_sq/<parameter name>  AdamW second moment
// Each rank writes the pieces it owns as regions of the global (unpadded) tensors: a tensor-
// parallel shard at its global offset, a ZeRO-1 shard of the moments as up to three rectangles
// per parameter. Reading gathers exactly the regions this rank needs from whatever pieces the
// writing layout left, so a checkpoint loads under any other (dp, tp, pp, zero) layout.
#include <functional>

#include "trainer/checkpoint/checkpoint_reader.hpp"
#include "trainer/checkpoint/checkpoint_writer.hpp"
#include "trainer/model/parameters.hpp"
#include "trainer/optim/adamw.hpp"

namespace kiln::checkpoint {

std::string model_tensor_name(std::string_view parameter);
std::string exp_avg_tensor_name(std::string_view parameter);
std::string exp_avg_sq_tensor_name(std::string_view parameter);

// Decides which of this rank's parameters (and their optimizer segments) it writes, so that a
// value held identically by several ranks is stored once.
using WritesParameter = std::function<bool(const model::ParameterInfo&)>;
bool writes_everything(const model::ParameterInfo&);

// Writes the store's values; refuses a bf16 store (its values are a rounded working copy).
void write_parameters(CheckpointWriter& writer, const model::ParameterStore& params,
                      const WritesParameter& writes = writes_everything);
// Writes /model/<name> from the optimizer's fp32 masters of its owned range (mixed precision:
// each ZeRO rank its master shard). Same tensors and format as write_parameters, so fp32 and
// bf16 runs resume from each other's checkpoints.
void write_masters(CheckpointWriter& writer, const model::ParameterStore& params, const optim::AdamW& optimizer,
                   const WritesParameter& writes = writes_everything);
void write_optimizer(CheckpointWriter& writer, const model::ParameterStore& params, const optim::AdamW& optimizer,
                     const WritesParameter& writes = writes_everything);

// Fill this rank's parameters (and moments) from a checkpoint; padding rows are left as they
// are (zero). Throws kiln::Error naming the checkpoint and tensor when one is missing, its
// global shape differs from the model's, or part of a needed region is in no piece.
// A bf16 store gets the stored fp32 values rounded to bf16.
void read_parameters(const CheckpointReader& reader, const model::ParameterStore& params);
// The optimizer's masters of its owned range from /model/<name>, exactly as stored.
void read_masters(const CheckpointReader& reader, const model::ParameterStore& params, optim::AdamW& optimizer);
void read_optimizer(const CheckpointReader& reader, const model::ParameterStore& params, optim::AdamW& optimizer);

}  // namespace kiln::checkpoint
