#include "data/dataset/verified_dataset.hpp"

#include "trainer/core/error.hpp"
#include "trainer/core/input_file.hpp"

namespace kiln::data {

void verify_for_training(const TokenDataset& dataset, std::string_view role) {
  const VerifyReport report = dataset.verify();
  if (dataset.has_loss_mask() && dataset.num_tokens() > 0 && report.tokens_in_loss == 0) {
    fail("{} dataset '{}' has no training targets: /loss_mask is 0 at all {} tokens, so every step "
         "would train at loss 0; prepare it again (kiln prepare --format chat masks the assistant turns)",
         role, dataset.path().string(), dataset.num_tokens());
  }
}

std::shared_ptr<const TokenDataset> open_verified_dataset(const std::filesystem::path& path,
                                                          std::string_view role) {
  require_regular_file(path, fmt::format("{} dataset", role));
  auto dataset = std::make_shared<const TokenDataset>(TokenDataset::open(path));
  try {
    verify_for_training(*dataset, role);
  } catch (const Error& error) {
    fail("{} dataset refused: {}", role, error.what());
  }
  return dataset;
}

}  // namespace kiln::data
