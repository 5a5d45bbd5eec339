#include "trainer/export/gguf_export.hpp"

#include <fmt/format.h>

#include <cstring>

#include "kernels/ops.hpp"
#include "trainer/core/error.hpp"
#include "trainer/export/gguf_tokenizer.hpp"
#include "trainer/export/gguf_writer.hpp"
#include "trainer/export/q8_0.hpp"
#include "trainer/export/safetensors_dtype.hpp"

namespace kiln::interop {

namespace {

enum class RowOrder { as_is, rope_q, rope_k };

// One GGUF tensor: kiln parameters stacked by rows (gpt2's attn_qkv: q, k, v), or rope_freqs.
struct TensorPlan {
  std::string name;
  std::vector<std::string> parts;
  RowOrder order = RowOrder::as_is;
  bool keep_f32 = false;
  bool rope_freqs = false;
  std::int64_t rows = 0;
  std::int64_t cols = 1;  // 1 for vectors
};

class Planner {
 public:
  explicit Planner(const ExportSource& source) : source_(source) {}

  void add(std::string name, std::vector<std::string> parts, RowOrder order = RowOrder::as_is) {
    TensorPlan plan{std::move(name), std::move(parts), order};
    for (const auto& part : plan.parts) {
      const auto shape = source_.shape_of(part);
      plan.rows += shape[0];
      plan.cols = shape.size() > 1 ? shape[1] : 1;
      plan.keep_f32 = shape.size() == 1;
    }
    plans_.push_back(std::move(plan));
  }
  void add_f32(std::string name, std::string part) {
    add(std::move(name), {std::move(part)});
    plans_.back().keep_f32 = true;
  }
  void add_rope_freqs(std::int64_t head_dim) {
    plans_.push_back({"rope_freqs.weight", {}, RowOrder::as_is, true, true, head_dim / 2, 1});
  }
  std::vector<TensorPlan> take() { return std::move(plans_); }

 private:
  const ExportSource& source_;
  std::vector<TensorPlan> plans_;
};

std::vector<TensorPlan> llama_plan(const ExportSource& source) {
  const auto& m = source.model();
  Planner planner(source);
  planner.add("token_embd.weight", {"embed.weight"});
  for (std::int64_t i = 0; i < m.n_layers; ++i) {
    const std::string k = fmt::format("blocks.{}.", i);
    const std::string g = fmt::format("blk.{}.", i);
    planner.add(g + "attn_norm.weight", {k + "attn_norm.weight"});
    planner.add(g + "attn_q.weight", {k + "attn.q.weight"}, RowOrder::rope_q);
    planner.add(g + "attn_k.weight", {k + "attn.k.weight"}, RowOrder::rope_k);
    planner.add(g + "attn_v.weight", {k + "attn.v.weight"});
    planner.add(g + "attn_output.weight", {k + "attn.out.weight"});
    planner.add(g + "ffn_norm.weight", {k + "mlp_norm.weight"});
    planner.add(g + "ffn_gate.weight", {k + "mlp.gate.weight"});
    planner.add(g + "ffn_up.weight", {k + "mlp.up.weight"});
    planner.add(g + "ffn_down.weight", {k + "mlp.down.weight"});
  }
  planner.add("output_norm.weight", {"final_norm.weight"});
  if (!m.tie_embeddings) planner.add("output.weight", {"lm_head.weight"});
  if (m.rope.llama3_scaling) planner.add_rope_freqs(m.head_dim);
  return planner.take();
}

std::vector<TensorPlan> gpt2_plan(const ExportSource& source) {
  const auto& m = source.model();
  Planner planner(source);
  planner.add("token_embd.weight", {"embed.weight"});
  planner.add_f32("position_embd.weight", "pos_embed.weight");
  for (std::int64_t i = 0; i < m.n_layers; ++i) {
    const std::string k = fmt::format("blocks.{}.", i);
    const std::string g = fmt::format("blk.{}.", i);
    for (const char* field : {"weight", "bias"}) {
      const std::string f = field;
      planner.add(g + "attn_norm." + f, {k + "attn_norm." + f});
      planner.add(g + "attn_qkv." + f, {k + "attn.q." + f, k + "attn.k." + f, k + "attn.v." + f});
      planner.add(g + "attn_output." + f, {k + "attn.out." + f});
      planner.add(g + "ffn_norm." + f, {k + "mlp_norm." + f});
      planner.add(g + "ffn_up." + f, {k + "mlp.up." + f});
      planner.add(g + "ffn_down." + f, {k + "mlp.down." + f});
    }
  }
  planner.add("output_norm.weight", {"final_norm.weight"});
  planner.add("output_norm.bias", {"final_norm.bias"});
  if (!m.tie_embeddings) planner.add("output.weight", {"lm_head.weight"});
  return planner.take();
}

GgmlType ggml_type_of(ExportDtype dtype) {
  switch (dtype) {
    case ExportDtype::f32: return GgmlType::f32;
    case ExportDtype::f16: return GgmlType::f16;
    case ExportDtype::bf16: return GgmlType::bf16;
    case ExportDtype::q8_0: return GgmlType::q8_0;
  }
  return GgmlType::f32;
}

// llama.cpp's general.file_type (enum llama_ftype) for a uniformly typed model.
std::uint32_t file_type_of(ExportDtype dtype) {
  switch (dtype) {
    case ExportDtype::f32: return 0;
    case ExportDtype::f16: return 1;
    case ExportDtype::q8_0: return 7;
    case ExportDtype::bf16: return 32;
  }
  return 0;
}

GgmlType tensor_type(const TensorPlan& plan, ExportDtype dtype, std::size_t& fallbacks) {
  if (plan.keep_f32) return GgmlType::f32;
  const GgmlType wanted = ggml_type_of(dtype);
  if (wanted == GgmlType::q8_0 && plan.cols % static_cast<std::int64_t>(kQ8_0BlockElements) != 0) {
    ++fallbacks;
    return GgmlType::f16;
  }
  return wanted;
}

std::vector<float> rope_frequency_divisors(const model::ModelConfig& m) {
  ops::RopeConfig plain = m.rope;
  plain.llama3_scaling = false;
  const auto unscaled = ops::rope_inv_freq(m.head_dim, plain);
  const auto scaled = ops::rope_inv_freq(m.head_dim, m.rope);
  std::vector<float> divisors(unscaled.size());
  for (std::size_t i = 0; i < divisors.size(); ++i) divisors[i] = static_cast<float>(unscaled[i] / scaled[i]);
  return divisors;
}

std::vector<float> tensor_values(const ExportSource& source, const TensorPlan& plan) {
  const auto& m = source.model();
  if (plan.rope_freqs) return rope_frequency_divisors(m);
  std::vector<float> values;
  for (const auto& part : plan.parts) {
    const auto piece = source.read(part);
    values.insert(values.end(), piece.begin(), piece.end());
  }
  if (plan.order == RowOrder::rope_q) return interleave_rope_rows(values, m.n_heads, m.head_dim, plan.cols);
  if (plan.order == RowOrder::rope_k) return interleave_rope_rows(values, m.n_kv_heads, m.head_dim, plan.cols);
  return values;
}

std::vector<std::byte> encode(const std::vector<float>& values, GgmlType type) {
  if (type == GgmlType::q8_0) return quantize_q8_0(values);
  const auto dtype = type == GgmlType::f32 ? SafetensorsDtype::F32
                     : type == GgmlType::f16 ? SafetensorsDtype::F16 : SafetensorsDtype::BF16;
  std::vector<std::byte> bytes(values.size() * safetensors_dtype_bytes(dtype));
  encode_floats(dtype, values, bytes);
  return bytes;
}

void add_architecture_metadata(GgufWriter& writer, const ExportSource& source, ExportDtype dtype) {
  const auto& m = source.model();
  const std::string arch(model::family_name(m.family));
  const auto u32 = [](std::int64_t value) { return GgufValue::of(static_cast<std::uint32_t>(value)); };
  const auto f32 = [](double value) { return GgufValue::of(static_cast<float>(value)); };
  writer.add_metadata("general.architecture", GgufValue::of(arch));
  writer.add_metadata("general.name", GgufValue::of(source.recipe().run.name.empty() ? std::string("kiln") : source.recipe().run.name));
  writer.add_metadata("general.file_type", u32(file_type_of(dtype)));
  writer.add_metadata("general.quantization_version", u32(2));
  writer.add_metadata(arch + ".vocab_size", u32(m.vocab_size));
  writer.add_metadata(arch + ".context_length", u32(m.max_seq_len));
  writer.add_metadata(arch + ".embedding_length", u32(m.d_model));
  writer.add_metadata(arch + ".block_count", u32(m.n_layers));
  writer.add_metadata(arch + ".feed_forward_length", u32(m.d_ff));
  writer.add_metadata(arch + ".attention.head_count", u32(m.n_heads));
  if (m.family == model::Family::gpt2) {
    writer.add_metadata(arch + ".attention.layer_norm_epsilon", f32(m.norm_eps));
    return;
  }
  writer.add_metadata(arch + ".attention.head_count_kv", u32(m.n_kv_heads));
  writer.add_metadata(arch + ".attention.layer_norm_rms_epsilon", f32(m.norm_eps));
  writer.add_metadata(arch + ".rope.freq_base", f32(m.rope.theta));
  writer.add_metadata(arch + ".rope.dimension_count", u32(m.head_dim));
}

}  // namespace

std::vector<float> interleave_rope_rows(const std::vector<float>& weight, std::int64_t n_heads, std::int64_t head_dim,
                                        std::int64_t columns) {
  std::vector<float> out(weight.size());
  const auto half = head_dim / 2;
  const auto row_bytes = static_cast<std::size_t>(columns) * sizeof(float);
  for (std::int64_t h = 0; h < n_heads; ++h) {
    for (std::int64_t i = 0; i < half; ++i) {
      for (std::int64_t j = 0; j < 2; ++j) {
        const auto to = static_cast<std::size_t>((h * head_dim + 2 * i + j) * columns);
        const auto from = static_cast<std::size_t>((h * head_dim + j * half + i) * columns);
        std::memcpy(out.data() + to, weight.data() + from, row_bytes);
      }
    }
  }
  return out;
}

GgufExportResult export_gguf(const ExportSource& source, const GgufExportOptions& options) {
  const auto plans = source.model().family == model::Family::llama ? llama_plan(source) : gpt2_plan(source);
  GgufExportResult result;
  GgufWriter writer;
  add_architecture_metadata(writer, source, options.dtype);
  for (auto& [key, value] : gguf_tokenizer_metadata(source.tokenizer_path(), source.model().vocab_size, source.chat_template())) {
    writer.add_metadata(key, std::move(value));
  }
  for (const auto& plan : plans) {
    const auto rows = static_cast<std::uint64_t>(plan.rows);
    const auto cols = static_cast<std::uint64_t>(plan.cols);
    // ggml order: the innermost dimension first.
    const std::vector<std::uint64_t> ne = cols == 1 ? std::vector<std::uint64_t>{rows} : std::vector<std::uint64_t>{cols, rows};
    writer.add_tensor(plan.name, ne, tensor_type(plan, options.dtype, result.f16_fallbacks));
  }
  if (!options.out_file.parent_path().empty()) std::filesystem::create_directories(options.out_file.parent_path());
  std::size_t next = 0;
  result.bytes = writer.write(options.out_file, [&](const GgufTensorInfo& info) {
    return encode(tensor_values(source, plans[next++]), info.type);
  });
  result.tensors = plans.size();
  return result;
}

}  // namespace kiln::interop
