#include "trainer/train/evaluate.hpp"

#include <algorithm>
#include <cmath>

#include "data/loader/token_loader.hpp"
#include "kernels/memory/device_buffer.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/stop_signal.hpp"
#include "trainer/train/micro_batch.hpp"

namespace kiln::train {

namespace {

data::TokenLoaderOptions loader_options_of(const EvalOptions& options) {
  data::TokenLoaderOptions loader_options;
  loader_options.seq_len = static_cast<std::uint64_t>(options.seq_len);
  loader_options.global_batch = static_cast<std::uint64_t>(options.rows);
  loader_options.seed = 0;
  loader_options.packed = options.packed;
  return loader_options;
}

std::int64_t batches_of(const data::TokenLoader& loader, std::uint64_t rows) {
  return static_cast<std::int64_t>((loader.num_windows() + rows - 1) / rows);
}

// A host vector copied into fresh memory of the model's device (the host's or a GPU's).
template <class T>
memory::DeviceBuffer on_device(const std::vector<T>& values, memory::Allocator& allocator) {
  memory::DeviceBuffer buffer(values.size() * sizeof(T), memory::MemoryCategory::workspace, allocator);
  const auto count = static_cast<std::int64_t>(values.size());
  ops::copy(buffer.view(dtype_of<T>, {count}), Tensor::of(values.data(), {count}));
  return buffer;
}

// The loss of every target of the micro-batch the model just ran forward (0 where the loss
// mask drops it), from the model's own logits with the same fused cross-entropy it used for
// the total: the model keeps only their sum, and recomputing them here costs one pass over
// the logits rather than a change to the model.
std::vector<float> target_losses(model::Transformer& model, const MicroBatch& micro) {
  const Tensor logits = model.logits().flatten_rows();  // [rows * T, Vp]
  const std::int64_t n = logits.size(0);
  memory::Allocator& allocator = model.parameters().allocator();
  // i32: the index type the CUDA cross-entropy takes (the CPU one takes any).
  const auto targets = on_device(std::vector<std::int32_t>(micro.targets.begin(), micro.targets.end()), allocator);
  const auto mask = micro.loss_mask.empty() ? memory::DeviceBuffer() : on_device(micro.loss_mask, allocator);
  const std::size_t row_bytes = static_cast<std::size_t>(n) * dtype_size(logits.dtype);
  const memory::DeviceBuffer losses(row_bytes, memory::MemoryCategory::workspace, allocator);
  const memory::DeviceBuffer lse(row_bytes, memory::MemoryCategory::workspace, allocator);
  const memory::DeviceBuffer loss_sum(2 * sizeof(double), memory::MemoryCategory::workspace, allocator);
  ops::cross_entropy_forward(losses.view(logits.dtype, {n}), lse.view(logits.dtype, {n}),
                             loss_sum.view(DType::F64, {2}), logits, targets.view(DType::I32, {n}),
                             mask.empty() ? Tensor() : mask.view(DType::U8, {n}), model.config().vocab_size);
  OwnedTensor host(DType::F32, {n});
  ops::copy(host, losses.view(logits.dtype, {n}));
  return {host.data<float>(), host.data<float>() + n};
}

std::vector<PositionBucket> empty_position_buckets(std::int64_t seq_len, std::int64_t bucket) {
  std::vector<PositionBucket> buckets;
  for (std::int64_t first = 0; first < seq_len; first += bucket) {
    buckets.push_back({first, std::min(first + bucket, seq_len), 0.0, 0});
  }
  return buckets;
}

void add_losses_by_position(model::Transformer& model, const MicroBatch& micro, std::int64_t bucket,
                            std::vector<PositionBucket>& buckets) {
  const std::vector<float> losses = target_losses(model, micro);
  for (std::size_t i = 0; i < losses.size(); ++i) {
    if (!micro.loss_mask.empty() && micro.loss_mask[i] == 0) continue;
    PositionBucket& into = buckets[static_cast<std::size_t>(micro.positions[i] / bucket)];
    into.loss_sum += losses[i];
    ++into.tokens;
  }
}

}  // namespace

double PositionBucket::loss() const { return tokens > 0 ? loss_sum / static_cast<double>(tokens) : 0.0; }

double EvalResult::perplexity() const { return std::exp(loss); }

std::int64_t batches_in_dataset(std::shared_ptr<const data::TokenDataset> dataset, const EvalOptions& options) {
  const auto loader_options = loader_options_of(options);
  return batches_of(data::TokenLoader(std::move(dataset), loader_options), loader_options.global_batch);
}

EvalResult evaluate(model::Transformer& model, std::shared_ptr<const data::TokenDataset> dataset,
                    const EvalOptions& options) {
  const auto loader_options = loader_options_of(options);
  const std::string source = dataset->path().string();
  data::TokenLoader loader(std::move(dataset), loader_options);
  const std::int64_t held = batches_of(loader, loader_options.global_batch);
  if (options.batches > held) {
    fail("{}: {} batches asked for, but it holds {} batch(es) of {} x {} tokens. Fix: ask for at most {} (or 0 for "
         "all of them)",
         source, options.batches, held, options.rows, options.seq_len, held);
  }
  const std::int64_t batches = options.batches > 0 ? options.batches : held;

  EvalResult result;
  if (options.position_bucket > 0) result.by_position = empty_position_buckets(options.seq_len, options.position_bucket);
  double loss_sum = 0.0;
  for (; result.batches < batches; ++result.batches) {
    if (stop_requested()) {
      result.stopped = true;
      break;
    }
    const data::Batch batch = loader.next_batch();
    const MicroBatch micro = slice_micro_batch(batch, 0, batch.rows, {source, model::BatchLimits::of(model.config())});
    const ops::LossSum loss = model.forward(micro.view());
    if (options.position_bucket > 0) add_losses_by_position(model, micro, options.position_bucket, result.by_position);
    loss_sum += loss.sum;
    result.tokens += loss.count;
  }
  result.loss = result.tokens > 0 ? loss_sum / static_cast<double>(result.tokens) : 0.0;
  return result;
}

}  // namespace kiln::train
