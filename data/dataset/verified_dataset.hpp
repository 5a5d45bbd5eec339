#pragma once
// The door through which every step that learns from a token dataset opens it: `kiln train`
// (data.train, data.val), `kiln eval --data` and `kiln prepare` before it publishes what it
// wrote. `kiln info` runs the same checks and reports instead of refusing.
//
// What is checked, and what it costs:
//   - the path is a regular file (a FIFO or /dev/zero would hang or never end), and the file's
//     structure and attributes are sound (TokenDataset::open: no content read);
//   - its content, streamed once per run: the XXH3 checksums of /tokens, /doc_offsets and
//     /loss_mask, offsets ascending and ending at num_tokens, ids < vocab_size, mask values 0 or
//     1 (TokenDataset::verify). One sequential read of the file at the start of the run:
//     measured ~2 s per GB from the page cache on the 2-core CI machine (0.21 s for a 106 MB
//     train.h5 of 50M tokens, ~12 ms for the quickstart's 5.8 MB one); a cold read adds the
//     disk's time for the same bytes;
//   - it holds something to learn from: a loss mask with no 1 anywhere would train at loss 0.
//
// Under MPI every rank verifies the file it opened, in full, before the first step. Ranks may
// read different copies of "the same" path (node-local disks, a stale NFS cache), so a verdict
// broadcast from rank 0 would vouch for bytes the other ranks never looked at; and ranks of one
// machine read the same pages, so the second and later reads come from the page cache and cost
// CPU only. A rank that finds damage fails with the message below and its error aborts the
// job (trainer/cli/main.cpp), so no rank trains on data another rank refused.
#include <filesystem>
#include <memory>
#include <string_view>

#include "data/dataset/token_dataset.hpp"

namespace kiln::data {

// Opens, verifies and checks `path` as described above; `role` names it in messages ("train",
// "val", "eval"). Throws kiln::Error naming the role, the file and the failing field.
std::shared_ptr<const TokenDataset> open_verified_dataset(const std::filesystem::path& path,
                                                          std::string_view role);

// The content and training-target checks of open_verified_dataset on an opened dataset.
void verify_for_training(const TokenDataset& dataset, std::string_view role);

}  // namespace kiln::data
