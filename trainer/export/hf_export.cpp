#include "trainer/export/hf_export.hpp"

#include <fmt/format.h>

#include <fstream>
#include <map>

#include "trainer/core/error.hpp"
#include "trainer/export/hf_config.hpp"
#include "trainer/export/hf_tokenizer_files.hpp"
#include "trainer/export/hf_weights.hpp"
#include "trainer/export/safetensors_writer.hpp"
#include "trainer/model/name_map.hpp"

namespace kiln::interop {

namespace fs = std::filesystem;

namespace {

// One Hugging Face tensor and the kiln tensors it is made of (three for GPT-2's c_attn).
struct HfTensorPlan {
  SafetensorsEntry entry;
  std::vector<model::HfTensorMapping> parts;
};

SafetensorsDtype safetensors_dtype_of(ExportDtype dtype) {
  switch (dtype) {
    case ExportDtype::f32: return SafetensorsDtype::F32;
    case ExportDtype::f16: return SafetensorsDtype::F16;
    case ExportDtype::bf16: return SafetensorsDtype::BF16;
    case ExportDtype::q8_0: break;
  }
  fail("--dtype q8_0 is a GGUF quantisation; Hugging Face exports are f32, f16 or bf16");
}

std::string_view torch_dtype_of(ExportDtype dtype) {
  return dtype == ExportDtype::f16 ? "float16" : dtype == ExportDtype::bf16 ? "bfloat16" : "float32";
}

std::vector<HfTensorPlan> plan_tensors(const ExportSource& source, SafetensorsDtype dtype) {
  std::vector<HfTensorPlan> plans;
  std::map<std::string, std::size_t> index;
  for (const auto& mapping : model::hf_name_map(source.model())) {
    auto [it, inserted] = index.try_emplace(mapping.hf_name, plans.size());
    if (inserted) plans.push_back({{mapping.hf_name, dtype, {}}, {}});
    plans[it->second].parts.push_back(mapping);
  }
  for (auto& plan : plans) {
    const auto& first = plan.parts.front();
    auto shape = source.shape_of(first.kiln_name);
    if (first.slice_begin) {
      const auto& last = plan.parts.back();
      shape[0] = *last.slice_begin + last.slice_length;
    }
    if (first.transpose) std::reverse(shape.begin(), shape.end());
    plan.entry.shape.assign(shape.begin(), shape.end());
  }
  return plans;
}

// The inverse of the importer's rearrangement: kiln [out, in] parts into the HF layout.
std::vector<float> assemble(const ExportSource& source, const HfTensorPlan& plan) {
  std::vector<float> hf(static_cast<std::size_t>(plan.entry.byte_count() / safetensors_dtype_bytes(plan.entry.dtype)));
  const std::size_t hf_cols = plan.entry.shape.size() > 1 ? plan.entry.shape[1] : 1;
  for (const auto& part : plan.parts) {
    const auto kiln = source.read(part.kiln_name);
    const auto shape = source.shape_of(part.kiln_name);
    const std::size_t rows = static_cast<std::size_t>(shape[0]);
    const std::size_t cols = shape.size() > 1 ? static_cast<std::size_t>(shape[1]) : 1;
    const std::size_t first = part.slice_begin ? static_cast<std::size_t>(*part.slice_begin) : 0;
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < cols; ++c) {
        const std::size_t target = part.transpose ? c * hf_cols + first + r : (first + r) * cols + c;
        hf[target] = kiln[r * cols + c];
      }
    }
  }
  return hf;
}

void write_json(const fs::path& path, const nlohmann::ordered_json& json) {
  std::ofstream out(path);
  out << json.dump(2) << "\n";
  if (!out) fail("cannot write {}", path.string());
}

void write_tokenizer_files(const ExportSource& source, const fs::path& out_dir) {
  const auto& tokenizer = source.tokenizer();
  const auto special = special_tokens_of(tokenizer, source.chat_template());
  fs::copy_file(source.tokenizer_path(), out_dir / "tokenizer.json", fs::copy_options::overwrite_existing);
  write_json(out_dir / "tokenizer_config.json",
             tokenizer_config_json(tokenizer, special, source.chat_template(), source.model().max_seq_len));
  write_json(out_dir / "generation_config.json", generation_config_json(special));
}

HfSpecialIds config_ids(const ExportSource& source) {
  const auto special = special_tokens_of(source.tokenizer(), source.chat_template());
  HfSpecialIds ids;
  if (special.bos) ids.bos = *special.bos;
  if (special.eos) ids.eos = *special.eos;
  return ids;
}

}  // namespace

HfExportResult export_hf(const ExportSource& source, const HfExportOptions& options) {
  const SafetensorsDtype dtype = safetensors_dtype_of(options.dtype);
  fs::create_directories(options.out_dir);
  const auto plans = plan_tensors(source, dtype);
  std::vector<SafetensorsEntry> entries;
  for (const auto& plan : plans) entries.push_back(plan.entry);
  const auto shards = plan_shards(entries, options.max_shard_bytes);

  HfExportResult result;
  std::size_t next_plan = 0;
  for (std::size_t s = 0; s < shards.size(); ++s) {
    SafetensorsWriter writer(options.out_dir / shard_file_name(s, shards.size()), shards[s], {{"format", "pt"}});
    for (const auto& entry : shards[s]) {
      writer.write_floats(entry.name, assemble(source, plans[next_plan++]));
      result.bytes += entry.byte_count();
      ++result.tensors;
    }
    writer.finish();
  }
  result.shards = shards.size();
  const fs::path index = options.out_dir / kSafetensorsIndexFile;
  if (shards.size() > 1) {
    std::ofstream(index) << safetensors_index_json(shards);
  } else {
    fs::remove(index);  // a stale index from an earlier sharded export would shadow model.safetensors
  }
  write_json(options.out_dir / "config.json", hf_config_from_model(source.recipe().model, config_ids(source),
                                                                   torch_dtype_of(options.dtype)));
  write_tokenizer_files(source, options.out_dir);
  return result;
}

}  // namespace kiln::interop
