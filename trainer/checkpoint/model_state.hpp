#pragma once
// The model's and the optimizer's tensors inside a checkpoint, by canonical global name
// (DESIGN.md §9):
//   /model/<parameter name>             the parameter, without vocabulary padding
//   /optim/exp_avg/<parameter name>     AdamW first moment
//   /optim/exp_avg_sq/<parameter name>  AdamW second moment
// A single process holds every tensor whole (offset 0); the parallel trainer will write
// each rank's shards under the same names with their offsets, and these readers gather the
// region they need, whatever layout wrote it.
#include "trainer/checkpoint/checkpoint_reader.hpp"
#include "trainer/checkpoint/checkpoint_writer.hpp"
#include "trainer/model/parameters.hpp"
#include "trainer/optim/adamw.hpp"

namespace kiln::checkpoint {

std::string model_tensor_name(std::string_view parameter);
std::string exp_avg_tensor_name(std::string_view parameter);
std::string exp_avg_sq_tensor_name(std::string_view parameter);

void write_parameters(CheckpointWriter& writer, const model::ParameterStore& params);
void write_optimizer(CheckpointWriter& writer, const model::ParameterStore& params, const optim::AdamW& optimizer);

// Fill the parameters (and moments) from a checkpoint; padding rows are left as they are
// (zero). Throws kiln::Error naming the checkpoint and tensor when one is missing or its
// global shape differs from the model's.
void read_parameters(const CheckpointReader& reader, const model::ParameterStore& params);
void read_optimizer(const CheckpointReader& reader, const model::ParameterStore& params, optim::AdamW& optimizer);

}  // namespace kiln::checkpoint
