#include "trainer/train/evaluate.hpp"

#include <algorithm>
#include <cmath>

#include "data/loader/token_loader.hpp"
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

}  // namespace

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
  double loss_sum = 0.0;
  for (; result.batches < batches; ++result.batches) {
    if (stop_requested()) {
      result.stopped = true;
      break;
    }
    const data::Batch batch = loader.next_batch();
    const MicroBatch micro = slice_micro_batch(batch, 0, batch.rows, {source, model::BatchLimits::of(model.config())});
    const ops::LossSum loss = model.forward(micro.view());
    loss_sum += loss.sum;
    result.tokens += loss.count;
  }
  result.loss = result.tokens > 0 ? loss_sum / static_cast<double>(result.tokens) : 0.0;
  return result;
}

}  // namespace kiln::train
