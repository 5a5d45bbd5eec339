#pragma once
// `kiln export --format hf`: a directory transformers loads with from_pretrained
//   config.json              the model (hf_config.hpp), vocab_size without padding
//   model.safetensors        or model-0000i-of-0000n.safetensors + model.safetensors.index.json
//   tokenizer.json           the checkpoint's, as trained
//   tokenizer_config.json    special tokens and the chat template (hf_tokenizer_files.hpp)
//   generation_config.json   bos/eos (and the end-of-turn id for chat models)
// Tensors are written with Hugging Face names and layouts (GPT-2 Conv1D transposed, q|k|v
// fused into c_attn) from the one name map per family (trainer/model/name_map.hpp). Memory:
// one Hugging Face tensor and the kiln tensor being placed into it, never the model.
#include <cstdint>
#include <filesystem>

#include "trainer/export/export_source.hpp"

namespace kiln::interop {

struct HfExportOptions {
  std::filesystem::path out_dir;
  ExportDtype dtype = ExportDtype::f32;        // f32, f16 or bf16
  std::uint64_t max_shard_bytes = 5'000'000'000;  // transformers' default shard size
};

struct HfExportResult {
  std::size_t tensors = 0;
  std::size_t shards = 0;
  std::uint64_t bytes = 0;
};

HfExportResult export_hf(const ExportSource& source, const HfExportOptions& options);

}  // namespace kiln::interop
