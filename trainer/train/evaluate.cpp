#include "trainer/train/evaluate.hpp"

#include <algorithm>
#include <cmath>

#include "data/loader/token_loader.hpp"
#include "trainer/train/micro_batch.hpp"

namespace kiln::train {

double EvalResult::perplexity() const { return std::exp(loss); }

EvalResult evaluate(model::Transformer& model, std::shared_ptr<const data::TokenDataset> dataset,
                    const EvalOptions& options) {
  data::TokenLoaderOptions loader_options;
  loader_options.seq_len = static_cast<std::uint64_t>(options.seq_len);
  loader_options.global_batch = static_cast<std::uint64_t>(options.rows);
  loader_options.seed = 0;
  loader_options.packed = options.packed;
  data::TokenLoader loader(std::move(dataset), loader_options);
  const std::uint64_t whole_dataset = (loader.num_windows() + loader_options.global_batch - 1) / loader_options.global_batch;
  const std::uint64_t batches = options.batches > 0 ? static_cast<std::uint64_t>(options.batches) : whole_dataset;

  double loss_sum = 0.0;
  std::int64_t counted = 0;
  for (std::uint64_t index = 0; index < batches; ++index) {
    const data::Batch batch = loader.next_batch();
    const MicroBatch micro = slice_micro_batch(batch, 0, batch.rows);
    const ops::LossSum loss = model.forward(micro.view());
    loss_sum += loss.sum;
    counted += loss.count;
  }
  return {counted > 0 ? loss_sum / static_cast<double>(counted) : 0.0, counted};
}

}  // namespace kiln::train
