#include "trainer/checkpoint/model_state.hpp"

#include <fmt/format.h>

#include "kernels/ops.hpp"
#include "trainer/core/error.hpp"

namespace kiln::checkpoint {

namespace {

Shape to_checkpoint_shape(const kiln::Shape& shape) {
  Shape result;
  for (const auto extent : shape) result.push_back(static_cast<std::uint64_t>(extent));
  return result;
}

// A box of a parameter's local storage, and where it sits in the global tensor.
struct Box {
  Shape global_offset;
  Shape shape;
  std::int64_t first_element = 0;  // local row-major index of its first element
};

// The local element range [begin, end) of a parameter as boxes, clipped to its real rows:
// one box for vectors; for matrices a partial first row, a block of whole rows and a
// partial last row, each contiguous in the local storage.
std::vector<Box> boxes_of(const model::ParameterInfo& info, std::int64_t begin, std::int64_t end) {
  const std::int64_t columns = info.shape.rank() == 1 ? 1 : info.shape[1];
  end = std::min(end, info.valid_rows * columns);
  std::vector<Box> boxes;
  if (begin >= end) return boxes;
  const auto at = [&](std::int64_t row, std::int64_t column, std::int64_t rows, std::int64_t width) {
    if (rows <= 0 || width <= 0) return;
    if (info.shape.rank() == 1) {
      boxes.push_back({{static_cast<std::uint64_t>(info.global_offset[0] + row)}, {static_cast<std::uint64_t>(rows)}, row});
      return;
    }
    boxes.push_back({{static_cast<std::uint64_t>(info.global_offset[0] + row), static_cast<std::uint64_t>(info.global_offset[1] + column)},
                     {static_cast<std::uint64_t>(rows), static_cast<std::uint64_t>(width)},
                     row * columns + column});
  };
  if (info.shape.rank() == 1) {
    at(begin, 0, end - begin, 1);
    return boxes;
  }
  if (info.shape.rank() != 2) fail("checkpoint: parameter {} has rank {}; only vectors and matrices are stored", info.name, info.shape.rank());
  std::int64_t row = begin / columns, column = begin % columns;
  const std::int64_t last_row = end / columns, last_column = end % columns;
  if (row == last_row) {
    at(row, column, 1, last_column - column);
    return boxes;
  }
  if (column > 0) {
    at(row, column, 1, columns - column);
    ++row;
  }
  at(row, 0, last_row - row, columns);
  at(last_row, 0, 1, last_column);
  return boxes;
}

// A flat tensor's values on the host: itself, or (on the CUDA device) a host copy.
OwnedTensor host_copy(const Tensor& flat) {
  OwnedTensor host(flat.dtype, flat.shape);
  ops::copy(host, flat);
  return host;
}

void write_boxes(CheckpointWriter& writer, const std::string& name, const model::ParameterInfo& info, Tensor flat,
                 std::int64_t flat_first_element, const std::vector<Box>& boxes) {
  OwnedTensor staged;
  if (flat.device != Device::Cpu) {
    staged = host_copy(flat);
    flat = staged.tensor();
  }
  const Shape global = to_checkpoint_shape(info.export_shape());
  for (const auto& box : boxes) {
    const auto offset = static_cast<std::size_t>(box.first_element - flat_first_element);
    std::uint64_t count = 1;
    for (auto extent : box.shape) count *= extent;
    if (flat.dtype == DType::F64) {
      writer.add(name, global, box.global_offset, std::span<const double>(flat.data<double>() + offset, count), box.shape);
    } else {
      writer.add(name, global, box.global_offset, std::span<const float>(flat.data<float>() + offset, count), box.shape);
    }
  }
}

void read_boxes(const CheckpointReader& reader, const std::string& name, const model::ParameterInfo& info, Tensor flat,
                std::int64_t flat_first_element, const std::vector<Box>& boxes) {
  if (!reader.has(name)) fail("checkpoint {} has no tensor {}", reader.dir().string(), name);
  const Shape expected = to_checkpoint_shape(info.export_shape());
  const auto& found = reader.tensor(name).global_shape;
  if (found != expected) {
    fail("checkpoint {}: tensor {} has shape {} but the model expects {} (does the recipe match the checkpoint?)",
         reader.dir().string(), name, fmt::join(found, "x"), fmt::join(expected, "x"));
  }
  // On the CUDA device: read into a host copy (which keeps what no box covers), then upload.
  const Tensor device_flat = flat;
  OwnedTensor staged;
  if (flat.device != Device::Cpu) {
    staged = host_copy(flat);
    flat = staged.tensor();
  }
  for (const auto& box : boxes) {
    const auto offset = static_cast<std::size_t>(box.first_element - flat_first_element);
    std::uint64_t count = 1;
    for (auto extent : box.shape) count *= extent;
    if (flat.dtype == DType::F64) {
      reader.read_region(name, box.global_offset, box.shape, std::span<double>(flat.data<double>() + offset, count));
    } else {
      reader.read_region(name, box.global_offset, box.shape, std::span<float>(flat.data<float>() + offset, count));
    }
  }
  if (device_flat.device != Device::Cpu) ops::copy(device_flat, flat);
}

Tensor flat_values(const model::ParameterStore& params, std::size_t index) {
  return params.values().narrow(0, params.infos()[index].offset, params.infos()[index].numel());
}

// Checkpoints hold fp32 values (DESIGN.md §9): a bf16 working copy is no checkpoint's source.
void require_stored_dtype(const model::ParameterStore& params, const char* what) {
  if (params.dtype() == DType::BF16)
    fail("checkpoint: {} of a bf16 parameter store: checkpoints hold the fp32 masters, which the optimizer owns "
         "(write_masters)",
         what);
}

}  // namespace

std::string model_tensor_name(std::string_view parameter) { return fmt::format("/model/{}", parameter); }
std::string exp_avg_tensor_name(std::string_view parameter) { return fmt::format("/optim/exp_avg/{}", parameter); }
std::string exp_avg_sq_tensor_name(std::string_view parameter) {
  return fmt::format("/optim/exp_avg_sq/{}", parameter);
}

bool writes_everything(const model::ParameterInfo&) { return true; }

void write_parameters(CheckpointWriter& writer, const model::ParameterStore& params, const WritesParameter& writes) {
  require_stored_dtype(params, "write_parameters");
  for (std::size_t index = 0; index < params.size(); ++index) {
    const auto& info = params.infos()[index];
    if (!writes(info)) continue;
    write_boxes(writer, model_tensor_name(info.name), info, flat_values(params, index), 0, boxes_of(info, 0, info.numel()));
  }
}

void write_optimizer(CheckpointWriter& writer, const model::ParameterStore& params, const optim::AdamW& optimizer,
                     const WritesParameter& writes) {
  for (const auto& segment : optimizer.segments()) {
    const auto& info = params.infos()[segment.parameter];
    if (!writes(info)) continue;
    const auto boxes = boxes_of(info, segment.begin, segment.end);
    write_boxes(writer, exp_avg_tensor_name(info.name), info, optimizer.exp_avg(segment), segment.begin, boxes);
    write_boxes(writer, exp_avg_sq_tensor_name(info.name), info, optimizer.exp_avg_sq(segment), segment.begin, boxes);
  }
}

void write_masters(CheckpointWriter& writer, const model::ParameterStore& params, const optim::AdamW& optimizer,
                   const WritesParameter& writes) {
  for (const auto& segment : optimizer.segments()) {
    const auto& info = params.infos()[segment.parameter];
    if (!writes(info)) continue;
    write_boxes(writer, model_tensor_name(info.name), info, optimizer.master(params, segment), segment.begin,
                boxes_of(info, segment.begin, segment.end));
  }
}

void read_parameters(const CheckpointReader& reader, const model::ParameterStore& params) {
  // A bf16 store reads each parameter's fp32 values through a scratch and keeps them rounded.
  OwnedTensor scratch;
  for (std::size_t index = 0; index < params.size(); ++index) {
    const auto& info = params.infos()[index];
    Tensor target = flat_values(params, index);
    if (params.dtype() == DType::BF16) {
      scratch = OwnedTensor(DType::F32, {std::max<std::int64_t>(info.numel(), 1)});
      target = scratch.tensor().narrow(0, 0, info.numel());
      ops::copy(target, flat_values(params, index));  // keeps the padding rows (zero)
    }
    read_boxes(reader, model_tensor_name(info.name), info, target, 0, boxes_of(info, 0, info.numel()));
    if (params.dtype() == DType::BF16) ops::copy(flat_values(params, index), target);
  }
}

void read_masters(const CheckpointReader& reader, const model::ParameterStore& params, optim::AdamW& optimizer) {
  for (const auto& segment : optimizer.segments()) {
    const auto& info = params.infos()[segment.parameter];
    read_boxes(reader, model_tensor_name(info.name), info, optimizer.master(params, segment), segment.begin,
               boxes_of(info, segment.begin, segment.end));
  }
}

void read_optimizer(const CheckpointReader& reader, const model::ParameterStore& params, optim::AdamW& optimizer) {
  for (const auto& segment : optimizer.segments()) {
    const auto& info = params.infos()[segment.parameter];
    const auto boxes = boxes_of(info, segment.begin, segment.end);
    read_boxes(reader, exp_avg_tensor_name(info.name), info, optimizer.exp_avg(segment), segment.begin, boxes);
    read_boxes(reader, exp_avg_sq_tensor_name(info.name), info, optimizer.exp_avg_sq(segment), segment.begin, boxes);
  }
}

}  // namespace kiln::checkpoint
