#pragma once
// `kiln prepare --format chat --template NAME --seq-len N`: chat JSONL -> SFT token datasets.
//
// Each conversation (data/chat/conversation.hpp) is rendered with the named template
// (chat_template.hpp) into ids and a loss mask on the assistant spans (chat_renderer.hpp),
// assigned to train or val by the same ordinal hash as plain text, and packed into windows of
// seq_len tokens with a filler document closing each window (chat_packing.hpp). Both files
// carry /loss_mask, the template's name (attribute chat_template) and the special ids
// {"eos", "end_of_turn"}. SFT sets are small: rank 0 does all the work under mpirun.
#include "data/dataset/prepare.hpp"

namespace kiln::data {

PrepareSummary prepare_chat_datasets(const PrepareOptions& options);

}  // namespace kiln::data
