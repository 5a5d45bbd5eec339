#include "trainer/checkpoint/model_state.hpp"

#include <fmt/format.h>

#include "trainer/core/error.hpp"

namespace kiln::checkpoint {

namespace {

Shape to_checkpoint_shape(const kiln::Shape& shape) {
  Shape result;
  for (const auto extent : shape) result.push_back(static_cast<std::uint64_t>(extent));
  return result;
}

// The real (unpadded) leading rows of a stored parameter-shaped tensor.
Tensor exported_part(Tensor stored, const model::ParameterInfo& info) {
  return stored.narrow(0, 0, info.valid_rows);
}

void write_tensor(CheckpointWriter& writer, const std::string& name, Tensor stored, const model::ParameterInfo& info) {
  const Tensor part = exported_part(stored, info);
  const Shape shape = to_checkpoint_shape(part.shape);
  const auto count = static_cast<std::size_t>(part.numel());
  if (part.dtype == DType::F64) {
    writer.add_whole(name, shape, std::span<const double>(part.data<double>(), count));
  } else {
    writer.add_whole(name, shape, std::span<const float>(part.data<float>(), count));
  }
}

void read_tensor(const CheckpointReader& reader, const std::string& name, Tensor stored,
                 const model::ParameterInfo& info) {
  const Tensor part = exported_part(stored, info);
  const Shape expected = to_checkpoint_shape(part.shape);
  if (!reader.has(name)) fail("checkpoint {} has no tensor {}", reader.dir().string(), name);
  const auto& found = reader.tensor(name).global_shape;
  if (found != expected) {
    fail("checkpoint {}: tensor {} has shape {} but the model expects {} (does the recipe match the checkpoint?)",
         reader.dir().string(), name, fmt::join(found, "x"), fmt::join(expected, "x"));
  }
  const Shape origin(expected.size(), 0);
  const auto count = static_cast<std::size_t>(part.numel());
  if (part.dtype == DType::F64) {
    reader.read_region(name, origin, expected, std::span<double>(part.data<double>(), count));
  } else {
    reader.read_region(name, origin, expected, std::span<float>(part.data<float>(), count));
  }
}

}  // namespace

std::string model_tensor_name(std::string_view parameter) { return fmt::format("/model/{}", parameter); }
std::string exp_avg_tensor_name(std::string_view parameter) { return fmt::format("/optim/exp_avg/{}", parameter); }
std::string exp_avg_sq_tensor_name(std::string_view parameter) {
  return fmt::format("/optim/exp_avg_sq/{}", parameter);
}

void write_parameters(CheckpointWriter& writer, const model::ParameterStore& params) {
  for (std::size_t index = 0; index < params.size(); ++index) {
    const auto& info = params.infos()[index];
    write_tensor(writer, model_tensor_name(info.name), params.value(index), info);
  }
}

void write_optimizer(CheckpointWriter& writer, const model::ParameterStore& params, const optim::AdamW& optimizer) {
  for (std::size_t index = 0; index < params.size(); ++index) {
    const auto& info = params.infos()[index];
    write_tensor(writer, exp_avg_tensor_name(info.name), optimizer.exp_avg(params, index), info);
    write_tensor(writer, exp_avg_sq_tensor_name(info.name), optimizer.exp_avg_sq(params, index), info);
  }
}

void read_parameters(const CheckpointReader& reader, const model::ParameterStore& params) {
  for (std::size_t index = 0; index < params.size(); ++index) {
    const auto& info = params.infos()[index];
    read_tensor(reader, model_tensor_name(info.name), params.value(index), info);
  }
}

void read_optimizer(const CheckpointReader& reader, const model::ParameterStore& params, optim::AdamW& optimizer) {
  for (std::size_t index = 0; index < params.size(); ++index) {
    const auto& info = params.infos()[index];
    read_tensor(reader, exp_avg_tensor_name(info.name), optimizer.exp_avg(params, index), info);
    read_tensor(reader, exp_avg_sq_tensor_name(info.name), optimizer.exp_avg_sq(params, index), info);
  }
}

}  // namespace kiln::checkpoint
