#pragma once
// The one list of recipe keys (DESIGN.md §1 "one truth per fact"): path, member, and the rule
// its value must follow. Loading, --set, unknown-key suggestions, YAML/JSON output and the
// README completeness test all walk this list, so adding a key is one line here (plus its
// documentation in recipes/README.md, which a test enforces).
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trainer/config/recipe.hpp"

namespace kiln::config {

// What a value must satisfy, beyond its type. Bounds apply to numbers.
struct FieldRule {
  bool required = false;
  std::optional<double> min;
  bool min_exclusive = false;
  std::optional<double> max;
  bool max_exclusive = false;
  bool zero_means_auto = false;  // the word `auto` reads as 0, and 0 is written as `auto`

  constexpr FieldRule require() const { auto r = *this; r.required = true; return r; }
  constexpr FieldRule or_auto() const { auto r = *this; r.zero_means_auto = true; return r; }
};

constexpr FieldRule any_value() { return {}; }
constexpr FieldRule at_least(double low) { FieldRule r; r.min = low; return r; }
constexpr FieldRule above(double low) { FieldRule r; r.min = low; r.min_exclusive = true; return r; }
constexpr FieldRule in_range(double low, double high) {
  FieldRule r; r.min = low; r.max = high; return r;
}
constexpr FieldRule in_half_open(double low, double high) {
  FieldRule r; r.min = low; r.max = high; r.max_exclusive = true; return r;
}

// Names of enumerated values as written in recipes.
template <class E>
struct EnumNames;
template <>
struct EnumNames<ModelFamily> {
  static constexpr std::array<std::pair<ModelFamily, std::string_view>, 2> values{
      {{ModelFamily::gpt2, "gpt2"}, {ModelFamily::llama, "llama"}}};
};
template <>
struct EnumNames<RopeScalingType> {
  static constexpr std::array<std::pair<RopeScalingType, std::string_view>, 2> values{
      {{RopeScalingType::none, "none"}, {RopeScalingType::llama3, "llama3"}}};
};
template <>
struct EnumNames<Device> {
  static constexpr std::array<std::pair<Device, std::string_view>, 3> values{
      {{Device::auto_select, "auto"}, {Device::cpu, "cpu"}, {Device::cuda, "cuda"}}};
};
template <>
struct EnumNames<AttentionBackend> {
  static constexpr std::array<std::pair<AttentionBackend, std::string_view>, 3> values{
      {{AttentionBackend::flash, "flash"}, {AttentionBackend::flash_wgmma, "flash-wgmma"}, {AttentionBackend::cudnn, "cudnn"}}};
};
template <>
struct EnumNames<Recompute> {
  static constexpr std::array<std::pair<Recompute, std::string_view>, 3> values{
      {{Recompute::none, "none"}, {Recompute::selective, "selective"}, {Recompute::full, "full"}}};
};
template <>
struct EnumNames<Precision> {
  static constexpr std::array<std::pair<Precision, std::string_view>, 3> values{
      {{Precision::auto_select, "auto"}, {Precision::fp32, "fp32"}, {Precision::bf16, "bf16"}}};
};
template <>
struct EnumNames<LrScheduleKind> {
  static constexpr auto values = lr_schedule_kind_names;
};

template <class E>
concept RecipeEnum = requires { EnumNames<E>::values; };

template <RecipeEnum E>
std::string_view enum_name(E value) {
  for (const auto& [candidate, name] : EnumNames<E>::values) {
    if (candidate == value) return name;
  }
  return "?";
}

template <RecipeEnum E>
std::optional<E> parse_enum(std::string_view text) {
  for (const auto& [candidate, name] : EnumNames<E>::values) {
    if (name == text) return candidate;
  }
  return std::nullopt;
}

template <RecipeEnum E>
std::vector<std::string> enum_names() {
  std::vector<std::string> names;
  for (const auto& entry : EnumNames<E>::values) names.emplace_back(entry.second);
  return names;
}

// Calls field(path, member, rule) for every key, in the order recipes are written.
// R is Recipe or const Recipe.
template <class R, class Field>
void visit_recipe_fields(R& r, Field&& field) {
  auto& m = r.model;
  field("model.family", m.family, any_value().require());
  field("model.d_model", m.d_model, at_least(1).require());
  field("model.n_layers", m.n_layers, at_least(1).require());
  field("model.n_heads", m.n_heads, at_least(1).require());
  field("model.n_kv_heads", m.n_kv_heads, at_least(0).or_auto());
  field("model.d_ff", m.d_ff, at_least(0).or_auto());
  field("model.max_seq_len", m.max_seq_len, at_least(1).require());
  field("model.vocab_size", m.vocab_size, at_least(0).or_auto());
  field("model.rope_theta", m.rope_theta, above(0));
  field("model.rope_scaling.type", m.rope_scaling.type, any_value());
  field("model.rope_scaling.factor", m.rope_scaling.factor, at_least(1));
  field("model.rope_scaling.low_freq_factor", m.rope_scaling.low_freq_factor, above(0));
  field("model.rope_scaling.high_freq_factor", m.rope_scaling.high_freq_factor, above(0));
  field("model.rope_scaling.original_max_position_embeddings",
        m.rope_scaling.original_max_position_embeddings, at_least(1));
  field("model.tie_embeddings", m.tie_embeddings, any_value());
  field("model.norm_eps", m.norm_eps, above(0));
  field("model.init_std", m.init_std, above(0));
  field("model.vocab_pad_multiple", m.vocab_pad_multiple, at_least(1));
  field("model.init_from", m.init_from, any_value());

  field("data.tokenizer", r.data.tokenizer, any_value().require());
  field("data.train", r.data.train, any_value().require());
  field("data.val", r.data.val, any_value());
  field("data.packed", r.data.packed, any_value());

  auto& t = r.train;
  field("train.steps", t.steps, at_least(1).require());
  field("train.seq_len", t.seq_len, at_least(0).or_auto());
  field("train.batch_size", t.batch_size, at_least(1).require());
  field("train.micro_batch_size", t.micro_batch_size, at_least(0).or_auto());
  field("train.seed", t.seed, at_least(0));
  field("train.threads", t.threads, at_least(0).or_auto());
  field("train.device", t.device, any_value());
  field("train.attention", t.attention, any_value());
  field("train.recompute", t.recompute, any_value());
  field("train.precision", t.precision, any_value());

  auto& o = r.optim;
  field("optim.lr", o.lr, above(0).require());
  field("optim.min_lr", o.min_lr, at_least(0));
  field("optim.beta1", o.beta1, in_half_open(0, 1));
  field("optim.beta2", o.beta2, in_half_open(0, 1));
  field("optim.eps", o.eps, above(0));
  field("optim.weight_decay", o.weight_decay, at_least(0));
  field("optim.grad_clip", o.grad_clip, at_least(0));
  field("optim.schedule", o.schedule, any_value());
  field("optim.warmup_steps", o.warmup_steps, at_least(0));
  field("optim.decay_steps", o.decay_steps, at_least(0).or_auto());

  field("checkpoint.every_steps", r.checkpoint.every_steps, at_least(0));
  field("checkpoint.keep_last", r.checkpoint.keep_last, at_least(0));

  field("eval.every_steps", r.eval.every_steps, at_least(0));
  field("eval.batches", r.eval.batches, in_range(1, kMaxEvalBatches));

  field("log.every_steps", r.log.every_steps, at_least(1));
  field("log.peak_tflops", r.log.peak_tflops, at_least(0).or_auto());

  auto& p = r.parallel;
  field("parallel.tp", p.tp, at_least(1));
  field("parallel.pp", p.pp, at_least(1));
  field("parallel.cp", p.cp, at_least(1));
  field("parallel.dp", p.dp, at_least(0).or_auto());
  field("parallel.micro_batches", p.micro_batches, at_least(0).or_auto());
  field("parallel.zero", p.zero, in_range(0, 1));
  field("parallel.overlap_grad_reduce", p.overlap_grad_reduce, any_value());
  field("parallel.overlap_param_gather", p.overlap_param_gather, any_value());
  field("parallel.sequence_parallel", p.sequence_parallel, any_value());
  field("parallel.timeout_s", p.timeout_s, in_range(1, 7 * 24 * 3600));

  field("run.name", r.run.name, any_value());
  field("run.dir", r.run.dir, any_value());
  field("run.resume", r.run.resume, any_value());
}

// Every key path ("model.d_model", ...), in visiting order.
std::vector<std::string> recipe_key_paths();
// Every section path ("model", "model.rope_scaling", "data", ...).
std::vector<std::string> recipe_section_paths();

}  // namespace kiln::config
