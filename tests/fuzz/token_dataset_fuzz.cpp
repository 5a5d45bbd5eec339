// A token dataset in HDF5 (data/dataset/token_dataset.*): TokenDataset::open and verify(), as
// `kiln train` and `kiln info` open a split, then the reads the loader makes (tokens, loss
// mask, document starts) on whatever open accepted.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/dataset/token_dataset.hpp"
#include "tests/fuzz/refusal_contract.hpp"
#include "tests/fuzz/scratch_file.hpp"

namespace {

constexpr std::uint64_t kProbeTokens = 64;

void read_like_the_loader(const kiln::data::TokenDataset& dataset) {
  const std::uint64_t count = std::min(dataset.num_tokens(), kProbeTokens);
  std::vector<std::uint32_t> tokens(count);
  dataset.read_tokens(0, tokens);
  for (const auto id : tokens) {
    kiln::fuzz::require(id < dataset.attributes().vocab_size, "a verified dataset holds an id >= vocab_size");
  }
  if (dataset.has_loss_mask()) {
    std::vector<std::uint8_t> mask(count);
    dataset.read_loss_mask(0, mask);
  }
  std::vector<std::uint64_t> offsets(std::min<std::uint64_t>(dataset.num_documents() + 1, kProbeTokens));
  dataset.read_doc_offsets(0, offsets);
  (void)dataset.document_starts_in(0, dataset.num_tokens());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const kiln::fuzz::ScratchFile file("train.h5");
  const auto& path = file.write(data, size);
  kiln::fuzz::accept_or_refuse([&] {
    const auto dataset = kiln::data::TokenDataset::open(path);
    dataset.verify();
    read_like_the_loader(dataset);
  });
  return 0;
}
