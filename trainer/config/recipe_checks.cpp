// Defaults that depend on other fields, and the relations between fields that a valid recipe
// must satisfy. Each problem names the key to change and how.
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "trainer/config/recipe_internal.hpp"

namespace kiln::config {

namespace {

int default_d_ff(const ModelConfig& model) {
  if (model.family == ModelFamily::gpt2) return 4 * model.d_model;
  // Llama: SwiGLU keeps the MLP's parameter count near a 4x GELU MLP with 2/3 of the width,
  // rounded up to a multiple of 256 for GEMM-friendly shapes.
  const int hidden = 8 * model.d_model / 3;
  return (hidden + 255) / 256 * 256;
}

std::int64_t default_decay_steps(const TrainConfig& train, const OptimConfig& optim) {
  switch (optim.schedule) {
    case LrScheduleKind::constant: return 0;
    case LrScheduleKind::wsd:
      return std::max<std::int64_t>(1, std::llround(0.2 * static_cast<double>(train.steps)));
    default: return std::max<std::int64_t>(1, train.steps - optim.warmup_steps);
  }
}

void check_model(const ModelConfig& m, RecipeProblems& problems) {
  if (m.n_kv_heads > m.n_heads || m.n_heads % m.n_kv_heads != 0) {
    problems.add("model.n_kv_heads",
                 fmt::format("model.n_heads = {} is not a multiple of n_kv_heads = {}", m.n_heads,
                             m.n_kv_heads),
                 "choose n_kv_heads dividing n_heads (n_kv_heads = n_heads is plain multi-head "
                 "attention)");
  }
  if (m.d_model % m.n_heads != 0) {
    problems.add("model.d_model",
                 fmt::format("d_model = {} is not a multiple of n_heads = {}", m.d_model, m.n_heads),
                 "choose d_model = n_heads * head_dim (e.g. head_dim 64)");
  } else if (m.family == ModelFamily::llama && m.head_dim() % 2 != 0) {
    problems.add("model.d_model",
                 fmt::format("head_dim = d_model / n_heads = {} is odd; RoPE rotates pairs",
                             m.head_dim()),
                 "choose d_model and n_heads with an even head_dim");
  }
  if (m.family == ModelFamily::gpt2 && m.rope_scaling.type != RopeScalingType::none) {
    problems.add("model.rope_scaling.type", "gpt2 uses learned positions, not RoPE",
                 "remove model.rope_scaling or set model.family: llama");
  }
  if (m.rope_scaling.type == RopeScalingType::llama3 &&
      m.rope_scaling.high_freq_factor <= m.rope_scaling.low_freq_factor) {
    problems.add("model.rope_scaling.high_freq_factor",
                 fmt::format("{} must be greater than low_freq_factor = {}",
                             m.rope_scaling.high_freq_factor, m.rope_scaling.low_freq_factor),
                 "use the Llama 3.1 values low_freq_factor: 1, high_freq_factor: 4");
  }
}

void check_batching(const Recipe& r, RecipeProblems& problems) {
  const auto& t = r.train;
  if (t.seq_len > r.model.max_seq_len) {
    problems.add("train.seq_len",
                 fmt::format("{} exceeds model.max_seq_len = {}", t.seq_len, r.model.max_seq_len),
                 "lower train.seq_len or raise model.max_seq_len");
  }
  if (t.micro_batch_size > t.batch_size || t.batch_size % t.micro_batch_size != 0) {
    problems.add("train.micro_batch_size",
                 fmt::format("train.batch_size = {} is not a multiple of micro_batch_size = {}",
                             t.batch_size, t.micro_batch_size),
                 "choose a micro_batch_size that divides batch_size");
    return;
  }
  const auto& p = r.parallel;
  if (p.dp == 0) return;  // checked against the world size by resolve_layout
  const std::int64_t per_step = static_cast<std::int64_t>(p.dp) * t.micro_batch_size;
  if (t.batch_size % per_step != 0) {
    problems.add("train.batch_size",
                 fmt::format("{} is not a multiple of parallel.dp * micro_batch_size = {} * {}",
                             t.batch_size, p.dp, t.micro_batch_size),
                 "make batch_size a multiple of dp * micro_batch_size");
  } else if (p.micro_batches != 0 && p.micro_batches != t.batch_size / per_step) {
    problems.add("parallel.micro_batches",
                 fmt::format("{} disagrees with batch_size / (dp * micro_batch_size) = {}",
                             p.micro_batches, t.batch_size / per_step),
                 "set parallel.micro_batches: auto");
  }
}

void check_schedule(const Recipe& r, RecipeProblems& problems) {
  const auto& o = r.optim;
  if (o.warmup_steps > r.train.steps) {
    problems.add("optim.warmup_steps",
                 fmt::format("{} is longer than train.steps = {}", o.warmup_steps, r.train.steps),
                 "use fewer warmup steps (typically 1-10% of train.steps)");
  }
  if (o.min_lr > o.lr) {
    problems.add("optim.min_lr", fmt::format("{} is above optim.lr = {}", o.min_lr, o.lr),
                 "set min_lr <= lr (commonly lr / 10)");
  }
  if (o.schedule == LrScheduleKind::wsd && o.warmup_steps + o.decay_steps > r.train.steps) {
    problems.add("optim.decay_steps",
                 fmt::format("warmup ({}) + decay ({}) exceed train.steps = {}", o.warmup_steps,
                             o.decay_steps, r.train.steps),
                 "shorten optim.decay_steps or optim.warmup_steps");
  }
}

// Sequence parallelism splits the sequence over the tensor-parallel ranks: without them there
// is nothing to split (refused rather than ignored), and the chunks must be equal.
void check_sequence_parallel(const Recipe& r, RecipeProblems& problems) {
  const auto& p = r.parallel;
  if (!p.sequence_parallel) return;
  if (p.tp == 1) {
    problems.add("parallel.sequence_parallel",
                 "splits the sequence over the tensor-parallel ranks, but parallel.tp = 1",
                 "set parallel.tp > 1, or parallel.sequence_parallel: false");
  } else if (r.train.seq_len % p.tp != 0) {
    problems.add("parallel.sequence_parallel",
                 fmt::format("train.seq_len = {} is not a multiple of parallel.tp = {} (each tp rank "
                             "keeps an equal chunk of the sequence)",
                             r.train.seq_len, p.tp),
                 "choose a train.seq_len divisible by parallel.tp, or parallel.sequence_parallel: false");
  }
}

// Context parallelism cuts each sequence into 2 x cp equal chunks (parallel/context_parallel.hpp)
// and runs kiln's own fp32 attention on them.
void check_context_parallel(const Recipe& r, RecipeProblems& problems) {
  const auto& p = r.parallel;
  if (p.cp == 1) return;
  if (r.train.seq_len % (2 * p.cp) != 0) {
    problems.add("parallel.cp",
                 fmt::format("cuts each sequence into 2 x cp = {} equal chunks, but train.seq_len = {} is not a "
                             "multiple of {}",
                             2 * p.cp, r.train.seq_len, 2 * p.cp),
                 "choose a train.seq_len divisible by 2 x parallel.cp");
  } else if (p.sequence_parallel && (r.train.seq_len / p.cp) % p.tp != 0) {
    problems.add("parallel.sequence_parallel",
                 fmt::format("each cp rank holds train.seq_len / cp = {} tokens, not a multiple of parallel.tp = {}",
                             r.train.seq_len / p.cp, p.tp),
                 "choose a train.seq_len divisible by cp x tp");
  }
  if (r.train.precision == Precision::bf16)
    problems.add("parallel.cp", "context parallelism runs in fp32 for now (train.precision is bf16)",
                 "set train.precision: fp32 (or auto), or parallel.cp: 1");
  if (r.train.attention == AttentionBackend::cudnn)
    problems.add("parallel.cp", "ring attention runs kiln's attention kernels, not cuDNN's (train.attention: cudnn)",
                 "set train.attention: flash, or parallel.cp: 1");
  if (r.train.attention == AttentionBackend::flash_wgmma)
    problems.add("parallel.cp", "ring attention runs kiln's mma.sync attention, not the wgmma kernels (train.attention: "
                 "flash-wgmma)", "set train.attention: flash, or parallel.cp: 1");
}

void check_parallel(const Recipe& r, RecipeProblems& problems) {
  const auto& m = r.model;
  const int tp = r.parallel.tp;
  const auto tp_must_divide = [&](std::string_view what, int value) {
    if (value % tp == 0) return;
    problems.add("parallel.tp", fmt::format("{} does not divide {} = {}", tp, what, value),
                 "choose a tp that divides n_heads, n_kv_heads and d_ff");
  };
  tp_must_divide("model.n_heads", m.n_heads);
  tp_must_divide("model.n_kv_heads", m.n_kv_heads);
  tp_must_divide("model.d_ff", m.d_ff);
  if (m.n_layers % r.parallel.pp != 0) {
    problems.add("parallel.pp",
                 fmt::format("{} does not divide model.n_layers = {}", r.parallel.pp, m.n_layers),
                 "choose a pp that divides n_layers, so every stage gets the same layer count");
  }
  check_sequence_parallel(r, problems);
  check_context_parallel(r, problems);
}

// cuDNN's fused attention takes head dims that are multiples of 8 up to 256. Whether the resolved
// device and precision can run it (CUDA, bf16, libcudnn present) the trainer checks once
// train.device and train.precision `auto` are resolved.
void check_device(const Recipe& r, RecipeProblems& problems) {
  // The wgmma kernels are tensor-core kernels for head dims 64 and 128 only; any other would
  // quietly take another kernel.
  if (r.train.attention == AttentionBackend::flash_wgmma && r.model.n_heads >= 1 && r.model.head_dim() != 64 &&
      r.model.head_dim() != 128)
    problems.add("train.attention",
                 fmt::format("flash-wgmma needs a head dim of 64 or 128 (model.d_model / model.n_heads = {})",
                             r.model.head_dim()),
                 "set train.attention: flash");
  if (r.train.attention != AttentionBackend::cudnn || r.model.n_heads < 1) return;
  if (r.model.head_dim() % 8 != 0 || r.model.head_dim() > 256) {
    problems.add("train.attention",
                 fmt::format("cudnn needs a head dim that is a multiple of 8 and at most 256 (model.d_model / "
                             "model.n_heads = {})",
                             r.model.head_dim()),
                 "set train.attention: flash, or choose d_model and n_heads so the head dim is a multiple of 8");
  }
}

// bf16 storage with tensor or pipeline parallelism moves bf16 activations between ranks and
// sums them in the tp all-reduces: NCCL does, the CPU's MPI cannot. A recipe that says
// train.device: cpu is refused here; with auto the trainer decides once the device is known.
void check_precision(const Recipe& r, RecipeProblems& problems) {
  if (r.train.precision != Precision::bf16 || r.train.device != Device::cpu) return;
  if (r.parallel.tp > 1 || r.parallel.pp > 1) {
    problems.add("train.precision",
                 fmt::format("bf16 with parallel.tp = {} / parallel.pp = {} needs CUDA ranks (NCCL sums bf16; the "
                             "CPU's MPI cannot)",
                             r.parallel.tp, r.parallel.pp),
                 "set train.precision: fp32, or train.device: cuda");
  }
}

void check_run(const Recipe& r, RecipeProblems& problems) {
  if (r.eval.every_steps > 0 && r.data.val.empty()) {
    problems.add("eval.every_steps", "evaluation is scheduled but data.val is empty",
                 "set data.val to a validation dataset or eval.every_steps: 0");
  }
}

}  // namespace

void resolve_recipe_defaults(Recipe& r, std::string_view source_name) {
  auto& m = r.model;
  if (m.n_kv_heads == 0) m.n_kv_heads = m.n_heads;
  if (m.d_ff == 0) m.d_ff = default_d_ff(m);
  if (r.train.seq_len == 0) r.train.seq_len = m.max_seq_len;
  if (r.train.micro_batch_size == 0) r.train.micro_batch_size = r.train.batch_size;
  if (r.optim.decay_steps == 0) r.optim.decay_steps = default_decay_steps(r.train, r.optim);
  if (r.run.name.empty()) r.run.name = std::filesystem::path(source_name).stem().string();
  if (r.run.dir.empty()) r.run.dir = (std::filesystem::path("runs") / r.run.name).string();
}

void check_recipe(const Recipe& recipe, RecipeProblems& problems) {
  check_model(recipe.model, problems);
  check_batching(recipe, problems);
  check_schedule(recipe, problems);
  check_parallel(recipe, problems);
  check_device(recipe, problems);
  check_precision(recipe, problems);
  check_run(recipe, problems);
}

}  // namespace kiln::config
