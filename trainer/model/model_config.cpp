#include "trainer/model/model_config.hpp"

#include "parallel/communicator.hpp"
#include "trainer/config/recipe.hpp"
#include "trainer/core/error.hpp"

namespace kiln::model {

std::string_view family_name(Family family) { return family == Family::gpt2 ? "gpt2" : "llama"; }

std::int64_t ModelConfig::padded_vocab() const {
  const std::int64_t multiple = vocab_pad_multiple * tp;
  return (vocab_size + multiple - 1) / multiple * multiple;
}

ModelConfig ModelConfig::resolved() const {
  ModelConfig config = *this;
  if (config.n_kv_heads == 0) config.n_kv_heads = config.n_heads;
  if (config.head_dim == 0 && config.n_heads > 0) config.head_dim = config.d_model / config.n_heads;
  config.validate();
  return config;
}

namespace {

void require_positive(std::string_view field, std::int64_t value) {
  if (value <= 0) fail("model config: {} = {} must be positive", field, value);
}

void validate_heads(const ModelConfig& c) {
  if (c.n_kv_heads <= 0 || c.n_kv_heads > c.n_heads || c.n_heads % c.n_kv_heads != 0)
    fail(
        "model config: n_kv_heads = {} must divide n_heads = {} (grouped-query attention "
        "shares each kv head among n_heads / n_kv_heads query heads)",
        c.n_kv_heads, c.n_heads);
  if (c.family == Family::gpt2 && c.n_kv_heads != c.n_heads)
    fail(
        "model config: gpt2 has no grouped-query attention; n_kv_heads = {} must equal "
        "n_heads = {}",
        c.n_kv_heads, c.n_heads);
  // GPT-2's attention projection maps d_model to d_model; exporters rely on it.
  if (c.family == Family::gpt2 && c.q_dim() != c.d_model)
    fail("model config: gpt2 needs n_heads * head_dim = d_model, got {} * {} != {}", c.n_heads,
         c.head_dim, c.d_model);
  if (c.n_heads % c.tp != 0 || c.n_kv_heads % c.tp != 0)
    fail("model config: n_heads = {} and n_kv_heads = {} must be divisible by tp = {}", c.n_heads,
         c.n_kv_heads, c.tp);
  if (c.d_ff % c.tp != 0)
    fail("model config: d_ff = {} must be divisible by tp = {}", c.d_ff, c.tp);
}

void validate_rope(const ModelConfig& c) {
  if (!c.uses_rope()) return;
  if (c.head_dim % 2 != 0) fail("model config: RoPE needs an even head_dim, got {}", c.head_dim);
  if (!(c.rope.theta > 0)) fail("model config: rope_theta = {} must be positive", c.rope.theta);
  if (!c.rope.llama3_scaling) return;
  if (!(c.rope.factor >= 1.0))
    fail("model config: rope_scaling.factor = {} must be >= 1", c.rope.factor);
  if (!(c.rope.low_freq_factor > 0) || !(c.rope.high_freq_factor > c.rope.low_freq_factor))
    fail("model config: rope_scaling needs 0 < low_freq_factor ({}) < high_freq_factor ({})",
         c.rope.low_freq_factor, c.rope.high_freq_factor);
  require_positive("rope_scaling.original_max_position_embeddings",
                   c.rope.original_max_position_embeddings);
}

}  // namespace

void ModelConfig::validate() const {
  require_positive("vocab_size", vocab_size);
  require_positive("vocab_pad_multiple", vocab_pad_multiple);
  require_positive("tp", tp);
  require_positive("d_model", d_model);
  require_positive("n_layers", n_layers);
  require_positive("n_heads", n_heads);
  require_positive("head_dim", head_dim);
  require_positive("d_ff", d_ff);
  require_positive("max_seq_len", max_seq_len);
  if (!(norm_eps > 0)) fail("model config: norm_eps = {} must be positive", norm_eps);
  if (!(init_std > 0)) fail("model config: init_std = {} must be positive", init_std);
  validate_heads(*this);
  validate_rope(*this);
}

void ModelConfig::validate_placement(const ParallelPlacement& p) const {
  const int tp_size = p.tp_size, pp_size = p.pp_size;
  if (tp_size < 1 || p.tp_rank < 0 || p.tp_rank >= tp_size)
    fail("model placement: tp rank {} of tp size {} is not a valid tensor-parallel position",
         p.tp_rank, tp_size);
  if (pp_size < 1 || p.pp_rank < 0 || p.pp_rank >= pp_size)
    fail("model placement: pipeline stage {} of pp size {} is not a valid stage", p.pp_rank,
         pp_size);
  if (p.tp != nullptr && (p.tp->size() != tp_size || p.tp->rank() != p.tp_rank))
    fail("model placement: the tp communicator is rank {} of {}, but the placement says {} of {}",
         p.tp->rank(), p.tp->size(), p.tp_rank, tp_size);
  if (n_heads % tp_size != 0)
    fail(
        "model config: n_heads = {} is not divisible by tp = {}; pick a tp that divides the "
        "number of attention heads",
        n_heads, tp_size);
  if (n_kv_heads % tp_size != 0)
    fail(
        "model config: n_kv_heads = {} is not divisible by tp = {} (each tensor-parallel rank "
        "needs whole kv heads); pick a tp that divides n_kv_heads",
        n_kv_heads, tp_size);
  if (d_ff % tp_size != 0)
    fail("model config: d_ff = {} is not divisible by tp = {}; pick a tp that divides d_ff", d_ff,
         tp_size);
  if (padded_vocab() % tp_size != 0)
    fail(
        "model config: the padded vocabulary of {} rows is not divisible by tp = {}; build the "
        "config for this tp (model.tp = {}, as from_recipe(recipe, tp) does) so that the "
        "vocabulary is padded to a multiple of vocab_pad_multiple * tp",
        padded_vocab(), tp_size, tp_size);
  if (n_layers < pp_size)
    fail(
        "model config: n_layers = {} is fewer than pp = {} pipeline stages; every stage needs "
        "at least one layer, so use pp <= {}",
        n_layers, pp_size, n_layers);
}

LayerRange stage_layers(std::int64_t n_layers, int pp_size, int pp_rank) {
  if (pp_size < 1 || pp_rank < 0 || pp_rank >= pp_size)
    fail("stage_layers: stage {} of {} pipeline stages does not exist", pp_rank, pp_size);
  if (n_layers < pp_size)
    fail(
        "model config: n_layers = {} is fewer than pp = {} pipeline stages; every stage needs "
        "at least one layer, so use pp <= {}",
        n_layers, pp_size, n_layers);
  const std::int64_t base = n_layers / pp_size, extra = n_layers % pp_size;
  // Rank in the order extra layers are handed out: middle stages, then the first, then the
  // last (never reached, since extra < pp_size).
  const auto order = [pp_size](int stage) -> std::int64_t {
    if (stage == 0) return pp_size == 1 ? 0 : pp_size - 2;
    if (stage == pp_size - 1) return pp_size - 1;
    return stage - 1;
  };
  const auto count = [&](int stage) { return base + (order(stage) < extra ? 1 : 0); };
  LayerRange range;
  for (int stage = 0; stage < pp_rank; ++stage) range.first += count(stage);
  range.last = range.first + count(pp_rank);
  return range;
}

ModelConfig gpt2_config() {
  ModelConfig config;
  config.family = Family::gpt2;
  config.tie_embeddings = true;
  return config;
}

ModelConfig llama_config() {
  ModelConfig config;
  config.family = Family::llama;
  config.tie_embeddings = false;
  config.rope.theta = 500000.0;
  return config;
}

ModelConfig from_recipe(const config::ModelConfig& recipe_model, int tp) {
  ModelConfig config =
      recipe_model.family == config::ModelFamily::gpt2 ? gpt2_config() : llama_config();
  config.vocab_size = recipe_model.vocab_size;
  config.vocab_pad_multiple = recipe_model.vocab_pad_multiple;
  config.tp = tp;
  config.d_model = recipe_model.d_model;
  config.n_layers = recipe_model.n_layers;
  config.n_heads = recipe_model.n_heads;
  config.n_kv_heads = recipe_model.n_kv_heads;
  config.d_ff = recipe_model.d_ff;
  config.max_seq_len = recipe_model.max_seq_len;
  config.norm_eps = recipe_model.norm_eps;
  config.tie_embeddings = recipe_model.tie_embeddings;
  config.init_std = recipe_model.init_std;
  config.rope.theta = recipe_model.rope_theta;
  const config::RopeScaling& scaling = recipe_model.rope_scaling;
  config.rope.llama3_scaling = scaling.type == config::RopeScalingType::llama3;
  config.rope.factor = scaling.factor;
  config.rope.low_freq_factor = scaling.low_freq_factor;
  config.rope.high_freq_factor = scaling.high_freq_factor;
  config.rope.original_max_position_embeddings = scaling.original_max_position_embeddings;
  return config.resolved();
}

namespace {

// Weights of the matmuls in one block: q|k|v, attention output, MLP in (gate|up) and down.
std::int64_t block_matmul_parameters(const ModelConfig& c) {
  return c.d_model * c.qkv_dim() + c.q_dim() * c.d_model + c.d_model * c.mlp_in_dim() +
         c.d_ff * c.d_model;
}

std::int64_t block_vector_parameters(const ModelConfig& c) {
  const std::int64_t norms = (c.norm() == NormKind::layernorm ? 4 : 2) * c.d_model;
  const std::int64_t biases =
      c.has_biases() ? c.qkv_dim() + c.d_model + c.mlp_in_dim() + c.d_model : 0;
  return norms + biases;
}

}  // namespace

std::int64_t parameter_count(const ModelConfig& config) {
  const ModelConfig c = config.resolved();
  const std::int64_t embeddings = c.vocab_size * c.d_model * (c.tie_embeddings ? 1 : 2);
  const std::int64_t positions = c.learned_positions() ? c.max_seq_len * c.d_model : 0;
  const std::int64_t final_norm = (c.norm() == NormKind::layernorm ? 2 : 1) * c.d_model;
  return embeddings + positions + final_norm +
         c.n_layers * (block_matmul_parameters(c) + block_vector_parameters(c));
}

double flops_per_token(const ModelConfig& config, std::int64_t seq_len) {
  const ModelConfig c = config.resolved();
  const auto matmul_parameters =
      static_cast<double>(c.n_layers * block_matmul_parameters(c) + c.vocab_size * c.d_model);
  const double attention = 12.0 * static_cast<double>(c.n_layers) * static_cast<double>(c.q_dim()) *
                           static_cast<double>(seq_len);
  return 6.0 * matmul_parameters + attention;
}

}  // namespace kiln::model
