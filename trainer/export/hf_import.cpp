#include "trainer/export/hf_import.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <set>

#include "data/tokenizer/tokenizer.hpp"
#include "trainer/checkpoint/checkpoint_names.hpp"
#include "trainer/checkpoint/checkpoint_writer.hpp"
#include "trainer/checkpoint/model_state.hpp"
#include "trainer/core/atomic_file.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/version.hpp"
#include "trainer/export/hf_config.hpp"
#include "trainer/export/hf_weights.hpp"
#include "trainer/model/name_map.hpp"
#include "trainer/model/parameters.hpp"

namespace kiln::interop {

namespace fs = std::filesystem;

namespace {

using Dims = std::vector<std::uint64_t>;

Dims dims_of(const kiln::Shape& shape) {
  Dims dims;
  for (const auto extent : shape) dims.push_back(static_cast<std::uint64_t>(extent));
  return dims;
}

// HF tensors kiln has no use for: GPT-2's causal-mask buffers, rotary caches, and a head
// saved beside tied embeddings.
bool is_ignorable(const std::string& hf_name, bool tied) {
  const auto ends_with = [&](std::string_view suffix) {
    return hf_name.size() >= suffix.size() && hf_name.compare(hf_name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with(".attn.bias") || ends_with(".attn.masked_bias") || ends_with("rotary_emb.inv_freq") ||
         (tied && hf_name == "lm_head.weight");
}

class TensorImporter {
 public:
  TensorImporter(const HfWeights& weights, const std::vector<model::HfTensorMapping>& map) : weights_(weights) {
    for (const auto& mapping : map) {
      if (mapping.slice_begin) {
        auto& total = fused_widths_[mapping.hf_name];
        total = std::max(total, static_cast<std::uint64_t>(*mapping.slice_begin + mapping.slice_length));
      }
    }
  }

  // Throws kiln::Error when the stored tensor of `mapping` is missing or does not have the shape
  // config.json implies. Run over the whole map before anything is converted or written.
  void check_shape(const model::HfTensorMapping& mapping, const Dims& kiln_shape) {
    const std::string& name = stored_name(mapping.hf_name);
    const Dims expected = hf_shape(mapping, kiln_shape);
    const auto& info = weights_.info(name);
    if (info.shape != expected) {
      fail("{}: tensor '{}' has shape [{}] but config.json implies [{}] (for kiln's {}); is config.json from "
           "the same model?",
           weights_.file_of(name).string(), name, fmt::join(info.shape, ", "), fmt::join(expected, ", "),
           mapping.kiln_name);
    }
  }

  // The kiln tensor of `mapping`, whose export shape is `kiln_shape`.
  std::vector<float> convert(const model::HfTensorMapping& mapping, const Dims& kiln_shape) {
    check_shape(mapping, kiln_shape);
    const std::string& name = stored_name(mapping.hf_name);
    if (cached_name_ != name) {
      cached_ = weights_.read_floats(name);
      cached_name_ = name;
    }
    used_.insert(name);
    return rearrange(mapping, kiln_shape, hf_shape(mapping, kiln_shape));
  }

  const std::set<std::string>& used() const { return used_; }

 private:
  // Original OpenAI GPT-2 checkpoints lack the "transformer." prefix.
  const std::string& stored_name(const std::string& hf_name) {
    auto [it, inserted] = resolved_.try_emplace(hf_name, hf_name);
    if (!inserted) return it->second;
    const std::string prefix = "transformer.";
    if (!weights_.has(hf_name) && hf_name.starts_with(prefix) && weights_.has(hf_name.substr(prefix.size()))) {
      it->second = hf_name.substr(prefix.size());
    }
    if (!weights_.has(it->second)) fail("{}: missing tensor '{}'", weights_.description(), hf_name);
    return it->second;
  }

  Dims hf_shape(const model::HfTensorMapping& mapping, const Dims& kiln_shape) const {
    Dims shape = kiln_shape;
    if (mapping.slice_begin) shape[0] = fused_widths_.at(mapping.hf_name);
    if (mapping.transpose) std::reverse(shape.begin(), shape.end());
    return shape;
  }

  std::vector<float> rearrange(const model::HfTensorMapping& mapping, const Dims& kiln_shape, const Dims& hf) const {
    const std::size_t rows = kiln_shape[0];
    const std::size_t cols = kiln_shape.size() > 1 ? kiln_shape[1] : 1;
    const std::size_t first = mapping.slice_begin ? static_cast<std::size_t>(*mapping.slice_begin) : 0;
    std::vector<float> out(rows * cols);
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::size_t c = 0; c < cols; ++c) {
        // kiln is [out, in]; HF Conv1D is [in, out] (transposed); a fused tensor holds the part
        // at output index first + r.
        const std::size_t source = mapping.transpose ? c * hf[1] + first + r : (first + r) * cols + c;
        out[r * cols + c] = cached_[source];
      }
    }
    return out;
  }

  const HfWeights& weights_;
  std::map<std::string, std::uint64_t> fused_widths_;
  std::map<std::string, std::string> resolved_;
  std::set<std::string> used_;
  std::string cached_name_;
  std::vector<float> cached_;
};

void refuse_unused(const HfWeights& weights, const std::set<std::string>& used, bool tied) {
  std::vector<std::string> unused;
  for (const auto& name : weights.names()) {
    if (!used.count(name) && !is_ignorable(name, tied)) unused.push_back(name);
  }
  if (unused.empty()) return;
  if (unused.size() > 5) unused.resize(5);
  fail("{}: tensors kiln's model has no place for: {} (does config.json describe these weights?)",
       weights.description(), fmt::join(unused, ", "));
}

// A name that exists in any form (a symlink loop or a dangling link included): those are the
// tokenizer's reader's to refuse by name, not a reason to import without one.
bool something_at(const fs::path& path) {
  std::error_code error;
  return fs::exists(fs::symlink_status(path, error));
}

std::optional<tok::Tokenizer> load_tokenizer(const fs::path& path, const config::ModelConfig& model) {
  if (!something_at(path)) return std::nullopt;
  auto tokenizer = tok::Tokenizer::load(path);
  if (static_cast<std::int64_t>(tokenizer.vocab_size()) > model.vocab_size) {
    fail("{} has {} tokens but config.json's vocab_size is {}", path.string(), tokenizer.vocab_size(), model.vocab_size);
  }
  return tokenizer;
}

// config.json's sizes must describe the weights the files hold: a config that implies more
// parameters than the files store values is refused before any buffer sized by it exists (a
// vocab_size or n_layer off by orders of magnitude would otherwise ask for gigabytes first).
void check_config_fits_weights(const config::ModelConfig& model, const HfWeights& weights, const fs::path& config_path) {
  std::uint64_t stored = 0;
  for (const auto& name : weights.names()) stored += weights.info(name).element_count();
  const auto implied = static_cast<std::uint64_t>(model::parameter_count(model::from_recipe(model, 1)));
  if (implied <= stored) return;
  fail("{}: holds {} values, but config.json implies a {} model of {} parameters (vocab_size {}, {} layers, hidden "
       "size {}, intermediate size {}, {} positions; {}); is config.json from the same model?",
       weights.description(), stored, config::to_string(model.family), implied, model.vocab_size, model.n_layers,
       model.d_model, model.d_ff, model.max_seq_len, config_path.string());
}

// Every parameter's shape without padding. The registry allocates the model's buffers, so it
// lives only while the shapes are listed, not while tensors are converted.
std::map<std::string, Dims> export_shapes(const model::ModelConfig& config) {
  const model::ParameterStore store(config, DType::F32);
  std::map<std::string, Dims> shapes;
  for (const auto& info : store.infos()) shapes.emplace(info.name, dims_of(info.export_shape()));
  return shapes;
}

}  // namespace

config::Recipe recipe_for_model(const config::ModelConfig& model, const fs::path& tokenizer, const fs::path& run_dir) {
  config::Recipe recipe;
  recipe.model = model;
  recipe.data.tokenizer = tokenizer.string();
  recipe.data.train = "(none: set data.train in a fine-tuning recipe)";
  recipe.train.steps = 1;
  recipe.train.batch_size = 1;
  recipe.train.micro_batch_size = 1;
  recipe.train.seq_len = std::min(model.max_seq_len, 2048);
  recipe.optim.lr = 1e-5;
  recipe.optim.decay_steps = 1;
  recipe.run.dir = run_dir.string();
  recipe.run.name = run_dir.filename().string();
  // Round trip through the loader: every field checked and resolved as a recipe file would be.
  return config::recipe_from_json(config::recipe_to_json(recipe), "imported model");
}

ImportResult import_hf_checkpoint(const fs::path& hf_dir, const fs::path& out_dir) {
  std::error_code error;
  if (!fs::is_directory(hf_dir, error)) {
    fail("{} is not a directory (kiln import --from hf wants a model directory)", hf_dir.string());
  }
  const fs::path config_path = hf_dir / "config.json";
  ImportResult result;
  result.model = model_config_from_hf(read_json_file(config_path, kMaxHfConfigBytes), config_path.string());
  const HfWeights weights(hf_dir);  // every header validated against its file's size
  check_config_fits_weights(result.model, weights, config_path);
  const auto tokenizer = load_tokenizer(hf_dir / "tokenizer.json", result.model);

  const fs::path checkpoints_dir = out_dir / "checkpoints";
  const fs::path tokenizer_in_checkpoint =
      fs::absolute(checkpoints_dir / checkpoint::step_dir_name(0) / "tokenizer.json", error);
  const config::Recipe recipe = recipe_for_model(result.model, tokenizer_in_checkpoint, fs::absolute(out_dir, error));
  const model::ModelConfig kiln_config = model::from_recipe(recipe.model, 1);
  const auto shapes = export_shapes(kiln_config);
  const auto map = model::hf_name_map(kiln_config);
  TensorImporter importer(weights, map);
  for (const auto& mapping : map) importer.check_shape(mapping, shapes.at(mapping.kiln_name));

  checkpoint::CheckpointWriter writer(checkpoints_dir, 0);
  for (const auto& mapping : map) {
    const Dims& shape = shapes.at(mapping.kiln_name);
    const auto values = importer.convert(mapping, shape);
    writer.add_whole(checkpoint::model_tensor_name(mapping.kiln_name), shape, values);
    ++result.tensors;
  }
  refuse_unused(weights, importer.used(), result.model.tie_embeddings);

  checkpoint::CheckpointMeta meta;
  meta.recipe = config::recipe_to_json(recipe);
  meta.extra = {{"imported_from", fs::absolute(hf_dir).string()}, {"import_format", "hf"}};
  meta.created_by = fmt::format("kiln {} import", kVersion);
  writer.set_meta(std::move(meta));
  if (tokenizer) {
    fs::copy_file(hf_dir / "tokenizer.json", writer.temporary_dir() / "tokenizer.json", error);
    if (error) fail("cannot copy {} into the checkpoint: {}", (hf_dir / "tokenizer.json").string(), error.message());
    result.tokenizer_carried = true;
  }
  writer.finish_rank_file();
  result.step_dir = writer.commit();
  // Like a run directory: the resolved recipe, whose model section a fine-tuning recipe copies.
  write_file_atomically(out_dir / "recipe.yaml", config::recipe_to_yaml(recipe));
  return result;
}

}  // namespace kiln::interop
