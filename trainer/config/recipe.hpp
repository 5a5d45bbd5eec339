#pragma once
// A recipe: everything a training run needs to know, loaded from YAML (DESIGN.md §10).
//
// The Recipe struct is the typed, *resolved* form: every "auto" default that can be decided
// from the recipe alone (n_kv_heads, d_ff, seq_len, micro_batch_size, decay_steps, run name and
// directory) is filled in by load, so code reading a Recipe never re-derives defaults. Two
// values stay open until the trainer knows more: model.vocab_size (0 = take it from the
// tokenizer, see resolve_vocab_size) and parallel.dp (0 = world / (tp * pp), see
// trainer/config/parallel_layout.hpp).
//
// The list of keys, their types and their ranges lives in one place, recipe_fields.hpp; loading,
// --set overrides, unknown-key suggestions and YAML/JSON serialisation are all driven from it.
// recipes/README.md documents every key (a test keeps the two in step).
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "trainer/config/lr_schedule_kind.hpp"

namespace kiln::config {

enum class ModelFamily { gpt2, llama };
enum class RopeScalingType { none, llama3 };
enum class Device { auto_select, cpu, cuda };
enum class AttentionBackend { flash, flash_wgmma, cudnn };
// What the training activations keep per block (trainer/model/activations.hpp).
enum class Recompute { none, selective, full };
// Storage of weights and activations (compute is fp32 either way): bf16 keeps fp32 master
// weights and moments in the optimizer beside a bf16 working copy (DESIGN.md §8). auto: bf16
// on CUDA, fp32 on the CPU (resolved by the trainer once the device is known).
enum class Precision { auto_select, fp32, bf16 };

// Llama 3.1 style frequency-dependent RoPE scaling (used when type == llama3).
struct RopeScaling {
  RopeScalingType type = RopeScalingType::none;
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
  bool operator==(const RopeScaling&) const = default;
};

struct ModelConfig {
  ModelFamily family = ModelFamily::gpt2;
  int d_model = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;       // resolved: equals n_heads unless grouped-query attention
  int d_ff = 0;             // resolved: gpt2 4*d_model; llama round_up(8/3*d_model, 256)
  int max_seq_len = 0;
  std::int64_t vocab_size = 0;  // 0 = from the tokenizer (resolve_vocab_size)
  double rope_theta = 10000.0;  // llama only
  RopeScaling rope_scaling;     // llama only
  bool tie_embeddings = true;
  double norm_eps = 1e-5;
  double init_std = 0.02;
  int vocab_pad_multiple = 128;  // embedding rows are padded to a multiple of this times tp
  std::string init_from;         // checkpoint to start from (weights only); empty = random init

  int head_dim() const { return d_model / n_heads; }
  bool operator==(const ModelConfig&) const = default;
};

struct DataConfig {
  std::string tokenizer;  // tokenizer.json
  std::string train;      // token dataset (.h5) of the training split
  std::string val;        // token dataset of the validation split; empty = no evaluation
  bool packed = true;     // pack documents into sequences; attention stops at boundaries
  bool operator==(const DataConfig&) const = default;
};

struct TrainConfig {
  std::int64_t steps = 0;             // optimizer steps
  int seq_len = 0;                    // resolved: max_seq_len when not given
  std::int64_t batch_size = 0;        // global sequences per optimizer step (all dp ranks)
  std::int64_t micro_batch_size = 0;  // sequences per forward/backward on one rank; resolved
  std::int64_t seed = 1234;
  int threads = 0;                    // CPU threads; 0 = OpenMP's default
  Device device = Device::auto_select;
  AttentionBackend attention = AttentionBackend::flash;
  Recompute recompute = Recompute::none;
  Precision precision = Precision::auto_select;

  std::int64_t tokens_per_step() const { return batch_size * seq_len; }
  bool operator==(const TrainConfig&) const = default;
};

struct OptimConfig {
  double lr = 0.0;  // peak learning rate
  double min_lr = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double grad_clip = 1.0;  // global gradient-norm clip; 0 = off
  LrScheduleKind schedule = LrScheduleKind::cosine;
  std::int64_t warmup_steps = 0;
  // Steps of decay (resolved): cosine/linear decay over decay_steps after warmup (default:
  // steps - warmup_steps); wsd decays linearly over the last decay_steps (default: 20% of steps).
  std::int64_t decay_steps = 0;
  bool operator==(const OptimConfig&) const = default;
};

struct CheckpointConfig {
  std::int64_t every_steps = 0;  // 0 = only at the end and on a stop signal
  int keep_last = 3;             // 0 = keep every checkpoint
  bool operator==(const CheckpointConfig&) const = default;
};

// The most validation batches one evaluation may ask for: an evaluation is a pause in training,
// not a run of its own (and a run never evaluates more than its validation set holds, see
// trainer.hpp). Use `kiln eval` for a whole large dataset.
inline constexpr std::int64_t kMaxEvalBatches = 100'000;

struct EvalConfig {
  std::int64_t every_steps = 0;  // 0 = only at the end (when data.val is set)
  std::int64_t batches = 20;     // validation batches (of train.batch_size sequences) per eval
  bool operator==(const EvalConfig&) const = default;
};

struct LogConfig {
  std::int64_t every_steps = 1;  // live line and metrics.jsonl record period
  double peak_tflops = 0.0;      // peak used for MFU; 0 = detect from the device
  bool operator==(const LogConfig&) const = default;
};

struct ParallelConfig {
  int tp = 1;
  int pp = 1;
  int cp = 1;             // context parallelism: each sample's sequence split over cp ranks
  int dp = 0;             // 0 = world / (tp * cp * pp)
  int micro_batches = 0;  // pipeline micro-batches per step; 0 = batch_size / (dp * micro)
  int zero = 0;           // 0 = replicated optimizer state; 1 = ZeRO-1 (shard over dp)
  bool overlap_grad_reduce = true;  // dp buckets start during the backward (same result as after it)
  bool overlap_param_gather = true;  // ZeRO's parameter gather overlaps the next forward (same values)
  bool sequence_parallel = false;   // Megatron SP: norms and residual split over tp along the sequence
  double timeout_s = 600.0;  // a collective waiting longer ends the job (parallel/watchdog.hpp)
  bool operator==(const ParallelConfig&) const = default;
};

struct RunConfig {
  std::string name;  // resolved: the recipe file's stem
  std::string dir;   // resolved: runs/<name>; holds checkpoints/, metrics.jsonl, recipe.yaml
  bool resume = true;  // continue from dir/checkpoints when a valid checkpoint is there
  bool operator==(const RunConfig&) const = default;
};

struct Recipe {
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
  OptimConfig optim;
  CheckpointConfig checkpoint;
  EvalConfig eval;
  LogConfig log;
  ParallelConfig parallel;
  RunConfig run;

  std::filesystem::path checkpoints_dir() const { return std::filesystem::path(run.dir) / "checkpoints"; }
  bool operator==(const Recipe&) const = default;
};

// --- loading ---------------------------------------------------------------------------------
// Reads, applies `key.path=value` overrides (in order), checks and resolves. Every problem is
// reported in one kiln::Error, one line each, naming the file (with line:column when the YAML
// has it), the key path, what was found and how to fix it.
Recipe load_recipe(const std::filesystem::path& path, std::span<const std::string> overrides = {});

// Same from YAML text; source_name stands for the file in messages and gives the default run
// name (its stem).
Recipe recipe_from_yaml_text(std::string_view yaml_text, std::string_view source_name,
                             std::span<const std::string> overrides = {});

// Same from a parsed document (overrides already applied).
Recipe recipe_from_yaml(const YAML::Node& root, std::string_view source_name);

// Applies one `--set` override "a.b.c=value" to a parsed recipe document. The path must name a
// recipe key (sections are refused, unknown keys get a "did you mean"); the value is kept as
// text so it is checked exactly like the same value written in the file.
void apply_override(YAML::Node& root, std::string_view assignment);

// --- serialising -----------------------------------------------------------------------------
// The resolved recipe, every key written, sections in a fixed order. Loading the output gives
// back an identical Recipe.
std::string recipe_to_yaml(const Recipe& recipe);
nlohmann::json recipe_to_json(const Recipe& recipe);
Recipe recipe_from_json(const nlohmann::json& json, std::string_view source_name);

// --- values decided after load ---------------------------------------------------------------
// Fills model.vocab_size from the tokenizer when it is 0, or checks that a given one holds every
// token id. Throws kiln::Error naming both files when the recipe's vocabulary is too small.
void resolve_vocab_size(Recipe& recipe, std::int64_t tokenizer_vocab_size,
                        std::string_view tokenizer_path);

// Embedding/head rows: vocab_size rounded up to vocab_pad_multiple * tp, so every TP shard of
// the vocabulary has the same, GEMM-friendly size. Needs a resolved vocab_size.
std::int64_t padded_vocab_size(const ModelConfig& model, int tp);

// Names as written in recipes ("gpt2", "llama3", "cosine", ...).
std::string_view to_string(ModelFamily family);
std::string_view to_string(RopeScalingType type);
std::string_view to_string(Device device);
std::string_view to_string(AttentionBackend backend);
std::string_view to_string(Recompute recompute);
std::string_view to_string(Precision precision);

}  // namespace kiln::config
