#include "trainer/train/trainer.hpp"

#include <fmt/format.h>
#include <omp.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "data/dataset/token_dataset.hpp"
#include "data/dataset/verified_dataset.hpp"
#include "data/loader/token_loader.hpp"
#include "data/tokenizer/tokenizer.hpp"
#include "parallel/data_parallel.hpp"
#include "parallel/mpi_environment.hpp"
#include "parallel/pipeline.hpp"
#include "parallel/process_grid.hpp"
#include "parallel/watchdog.hpp"
#include "trainer/checkpoint/checkpoint_finder.hpp"
#include "trainer/checkpoint/checkpoint_names.hpp"
#include "trainer/checkpoint/model_state.hpp"
#include "trainer/checkpoint/run_directory.hpp"
#include "trainer/config/parallel_layout.hpp"
#include "trainer/core/atomic_file.hpp"
#include "trainer/core/checksum.hpp"
#include "trainer/core/error.hpp"
#include "trainer/core/stop_signal.hpp"
#include "trainer/core/version.hpp"
#include "trainer/metrics/memory_report.hpp"
#include "trainer/metrics/metrics_log.hpp"
#include "trainer/metrics/model_flops.hpp"
#include "trainer/metrics/progress_line.hpp"
#include "trainer/metrics/throughput.hpp"
#include "trainer/optim/adamw.hpp"
#include "trainer/optim/lr_schedule.hpp"
#include "kernels/cuda/cudnn_sdpa.hpp"
#include "kernels/memory/device_buffer.hpp"
#include "trainer/model/device_batch.hpp"
#include "trainer/train/cuda_device.hpp"
#include "trainer/train/gradient_norm.hpp"
#include "trainer/train/micro_batch.hpp"

namespace kiln::train {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Consecutive steps with non-finite gradients after which the run is declared diverged.
constexpr int kMaxSkippedStepsInARow = 5;

std::shared_ptr<const data::TokenDataset> open_split(const std::string& path, const std::string& what,
                                                     const tok::Tokenizer& tokenizer, const std::string& tokenizer_path) {
  auto dataset = data::open_verified_dataset(path, what);  // structure, checksums, targets: once per run
  const std::string expected = to_hex(tokenizer.content_hash());
  if (dataset->attributes().tokenizer_hash != expected) {
    fail("{} dataset '{}' was tokenized with another tokenizer (hash {}) than data.tokenizer '{}' (hash {}); "
         "prepare the data again with this tokenizer or point data.tokenizer at the one it was made with",
         what, path, dataset->attributes().tokenizer_hash, tokenizer_path, expected);
  }
  return dataset;
}

optim::LrSchedule schedule_of(const config::Recipe& recipe) {
  optim::LrScheduleConfig schedule;
  schedule.kind = recipe.optim.schedule;
  schedule.lr = recipe.optim.lr;
  schedule.min_lr = recipe.optim.min_lr;
  schedule.warmup_steps = recipe.optim.warmup_steps;
  schedule.decay_steps = recipe.optim.decay_steps;
  schedule.total_steps = recipe.train.steps;
  return optim::LrSchedule(schedule);
}

// This rank's share of the peak: on CUDA the GPU's bf16 dense peak by its name; on the CPU
// the cores' estimate, where ranks sharing a machine share its cores, so an oversubscribed job
// (more ranks x threads than cores) never counts cores it does not have.
double peak_flops_of(const config::Recipe& recipe, const std::string& cuda_device_name) {
  if (recipe.log.peak_tflops > 0) return recipe.log.peak_tflops * 1e12;
  if (recipe.train.device == config::Device::cuda) return metrics::gpu_bf16_peak_flops(cuda_device_name);
  const int threads = omp_get_max_threads();
  const double ranks_here = parallel::MpiEnvironment::instance().local_size();
  const double cores = std::max(1u, std::thread::hardware_concurrency());
  return metrics::estimate_cpu_peak_flops(threads) * std::min(1.0, cores / (ranks_here * threads));
}

// A copy that fails with a kiln::Error naming both files (std::filesystem would throw its own
// exception, which the CLI reports as an internal error).
void copy_file_or_fail(const fs::path& from, const fs::path& to, std::string_view what) {
  std::error_code error;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, error);
  if (error) fail("cannot copy {} '{}' to '{}': {}", what, from.string(), to.string(), error.message());
}

// How many validation batches an evaluation runs: eval.batches, but never more than the
// validation set holds (more would count windows twice, as the loader wraps into a new epoch).
std::int64_t eval_batches_of(const config::Recipe& recipe, std::shared_ptr<const data::TokenDataset> val_data,
                             std::ostream& messages) {
  data::TokenLoaderOptions options;
  options.seq_len = static_cast<std::uint64_t>(recipe.train.seq_len);
  options.global_batch = static_cast<std::uint64_t>(recipe.train.batch_size);
  const data::TokenLoader loader(std::move(val_data), options);
  const auto held = static_cast<std::int64_t>((loader.num_windows() + options.global_batch - 1) / options.global_batch);
  if (recipe.eval.batches <= held) return recipe.eval.batches;
  messages << fmt::format("kiln: note: eval.batches = {} but data.val '{}' holds {} batch(es) of train.batch_size = {} "
                          "windows; each evaluation covers those {} once\n",
                          recipe.eval.batches, recipe.data.val, held, recipe.train.batch_size, held);
  return held;
}

// Whether train.device auto may take a GPU: the job is one rank and a GPU is usable.
bool gpu_available() { return gpu_is_usable("train.device: auto"); }

// Storage of weights and activations; compute is fp32 either way.
DType storage_dtype(config::Precision precision) {
  return precision == config::Precision::bf16 ? DType::BF16 : DType::F32;
}

std::string attention_banner(config::AttentionBackend attention) {
  if (attention == config::AttentionBackend::cudnn) return "cudnn (cuDNN " + cudnn_sdpa::library_version() + " fused SDPA)";
  if (attention == config::AttentionBackend::flash_wgmma) return "flash-wgmma (kiln's kernels on wgmma)";
  return "flash (kiln's kernels)";
}

std::string precision_banner(config::Precision precision) {
  if (precision == config::Precision::bf16) return "bf16 (bf16 weights and activations, fp32 compute and masters)";
  return "fp32";
}

// A stream that swallows what non-root ranks would otherwise print once per rank.
std::ostream& quiet_stream() {
  static std::ostream null(nullptr);
  return null;
}

}  // namespace

struct Trainer::State {
  config::Recipe recipe;
  fs::path run_dir;
  tok::Tokenizer tokenizer;
  std::unique_ptr<parallel::Communicator> world;
  std::unique_ptr<parallel::ProcessGrid> grid;
  config::ParallelLayout layout;
  std::shared_ptr<const data::TokenDataset> train_data;
  std::shared_ptr<const data::TokenDataset> val_data;
  std::unique_ptr<data::TokenLoader> loader;
  Device device = Device::Cpu;  // where the model, its gradients and optimizer state live
  std::string device_choice;    // why (for the banner)
  std::string cuda_device_name;
  std::unique_ptr<model::Transformer> model;
  // Micro-batches copied to the device, one per pipeline slot: a slot's batch stays until
  // its backward has run (1F1B keeps several micro-batches in flight).
  std::vector<std::unique_ptr<model::DeviceBatch>> device_batches;
  memory::DeviceBuffer loss_total;  // f64 [2]: a step's loss sum and count, on the model's device
  std::unique_ptr<parallel::DataParallel> data_parallel;
  std::unique_ptr<optim::AdamW> optimizer;
  parallel::PipelineLinks pipeline_links;  // kept from step to step (pp > 1)
  optim::LrSchedule schedule;
  std::int64_t step = 0;
  std::int64_t tokens_seen = 0;
  std::int64_t skipped_steps = 0;
  std::int64_t steps_this_run = 0;
  std::int64_t eval_batches = 0;
  double flops_per_token = 0;
  double peak_flops = 0;

  State(config::Recipe r, tok::Tokenizer t, optim::LrSchedule s)
      : recipe(std::move(r)), tokenizer(std::move(t)), schedule(std::move(s)) {}

  bool root() const { return world->rank() == 0; }
  std::ostream& messages() const { return root() ? std::cerr : quiet_stream(); }
  memory::Allocator& allocator() const {
    return device == Device::Cuda ? cuda_backend::cuda_allocator() : memory::host_allocator();
  }
  void choose_device();
  void check_cudnn_attention() const;
  void check_wgmma_attention() const;
  void build_model();
  void resume_or_initialise();
  void load_weights(const checkpoint::CheckpointReader& reader);
  double train_step();
  std::vector<MicroBatch> this_ranks_micro_batches(const data::Batch& batch, const std::string& dataset);
  ops::LossSum run_micro_batches(const std::vector<MicroBatch>& micro_batches, double grad_scale, bool backward);
  model::Transformer::GradientsFinal gradients_final_hook();
  Tensor reduced_gradients();
  double reduce_loss(ops::LossSum local);
  bool apply_update(double lr, double& grad_norm);
  bool stop_agreed();
  std::optional<double> validation_loss();
  fs::path save_checkpoint();
  void print_banner();
  metrics::MemoryPeaks memory_peaks_over_ranks() const;
};

// ---- setup ----------------------------------------------------------------------------------

Trainer::Trainer(config::Recipe recipe) {
  parallel::use_threads(recipe.train.threads);
  auto tokenizer = tok::Tokenizer::load(recipe.data.tokenizer);
  config::resolve_vocab_size(recipe, static_cast<std::int64_t>(tokenizer.vocab_size()), recipe.data.tokenizer);
  auto schedule = schedule_of(recipe);
  state_ = std::make_unique<State>(std::move(recipe), std::move(tokenizer), std::move(schedule));
  auto& s = *state_;
  s.world = parallel::world_communicator();
  parallel::start_collective_watchdog(s.recipe.parallel.timeout_s);  // every rank, before any collective
  s.layout = config::resolve_layout(s.recipe, s.world->size());
  s.choose_device();  // before the grid: GPU ranks' data groups are NCCL's
  s.grid = std::make_unique<parallel::ProcessGrid>(
      *s.world, s.layout.dp, s.layout.tp, s.layout.pp,
      s.device == Device::Cuda ? parallel::CommunicatorBackend::nccl : parallel::CommunicatorBackend::host, s.layout.cp);
  s.run_dir = s.recipe.run.dir;
  s.train_data = open_split(s.recipe.data.train, "train", s.tokenizer, s.recipe.data.tokenizer);
  if (!s.recipe.data.val.empty()) {
    s.val_data = open_split(s.recipe.data.val, "val", s.tokenizer, s.recipe.data.tokenizer);
    s.eval_batches = eval_batches_of(s.recipe, s.val_data, s.messages());
  }

  data::TokenLoaderOptions loader;
  loader.seq_len = static_cast<std::uint64_t>(s.recipe.train.seq_len);
  loader.global_batch = static_cast<std::uint64_t>(s.recipe.train.batch_size);
  loader.dp_rank = static_cast<std::uint64_t>(s.grid->dp_rank());
  loader.dp_size = static_cast<std::uint64_t>(s.layout.dp);
  loader.seed = static_cast<std::uint64_t>(s.recipe.train.seed);
  loader.packed = s.recipe.data.packed;
  s.loader = std::make_unique<data::TokenLoader>(s.train_data, loader);
  s.build_model();
  s.peak_flops = peak_flops_of(s.recipe, s.cuda_device_name);
  s.resume_or_initialise();
}

Trainer::~Trainer() = default;

// train.device and train.precision as this run uses them: `auto` takes the GPU when this build
// has one (one GPU per rank, by the rank's place on its node), else the CPU; precision `auto`
// is bf16 on CUDA (fp32 where bf16 is not wired yet: tp or pp > 1), fp32 on the CPU. The
// resolved values are what recipe.yaml, meta.json and metrics.jsonl record.
void Trainer::State::choose_device() {
  auto& train = recipe.train;
  if (train.device == config::Device::auto_select) {
    const bool gpu = gpu_available();
    device_choice = gpu ? "train.device auto: a GPU is here" : "train.device auto: no GPU here";
    train.device = gpu ? config::Device::cuda : config::Device::cpu;
  } else {
    device_choice = fmt::format("train.device {}", config::to_string(train.device));
  }
  if (train.device == config::Device::cuda) {
    cuda_device_name = select_cuda_device("train.device: cuda").device_name();
    device = Device::Cuda;
  }
  if (train.precision == config::Precision::auto_select) {
    const bool bf16_wired = layout.cp == 1;
    train.precision = device == Device::Cuda && bf16_wired ? config::Precision::bf16 : config::Precision::fp32;
    if (device == Device::Cuda && !bf16_wired) device_choice += "; precision auto: fp32, as bf16 takes cp = 1 for now";
  }
  // The tensor-parallel all-reduces and pipeline links move bf16 activations: NCCL sums bf16,
  // MPI on the host cannot.
  if (train.precision == config::Precision::bf16 && device != Device::Cuda && (layout.tp > 1 || layout.pp > 1))
    fail("train.precision: bf16 with parallel.tp = {} / parallel.pp = {} needs CUDA ranks (NCCL sums bf16; the CPU's MPI "
         "cannot). Fix: set train.precision: fp32, or train.device: cuda",
         layout.tp, layout.pp);
  if (train.attention == config::AttentionBackend::cudnn) check_cudnn_attention();
  if (train.attention == config::AttentionBackend::flash_wgmma) check_wgmma_attention();
}

// The wgmma kernels are kiln's bf16 tensor-core kernels on CUDA; elsewhere the setting would do
// nothing, so it is refused (whether the build has sm_90a code, the first forward says).
void Trainer::State::check_wgmma_attention() const {
  if (device != Device::Cuda)
    fail("train.attention: flash-wgmma runs on CUDA, but this run trains on the CPU ({}). Fix: set train.attention: "
         "flash, or train.device: cuda",
         device_choice);
  if (recipe.train.precision != config::Precision::bf16)
    fail("train.attention: flash-wgmma is a bf16 kernel, but train.precision is {}. Fix: set train.precision: bf16, "
         "or train.attention: flash",
         config::to_string(recipe.train.precision));
}

// cuDNN's fused attention is a CUDA, bf16 kernel that needs libcudnn: refused before any
// memory is spent when the resolved device, precision or machine cannot run it.
void Trainer::State::check_cudnn_attention() const {
  const auto& train = recipe.train;
  if (device != Device::Cuda)
    fail("train.attention: cudnn runs on CUDA, but this run trains on the CPU ({}). Fix: set train.attention: flash, "
         "or train.device: cuda",
         device_choice);
  if (train.precision != config::Precision::bf16)
    fail("train.attention: cudnn takes bf16 tensors, but train.precision is {}. Fix: set train.precision: bf16, or "
         "train.attention: flash",
         config::to_string(train.precision));
  std::string why;
  if (!cudnn_sdpa::available(&why))
    fail("train.attention: cudnn: {}. Fix: set train.attention: flash (kiln's own attention kernels)", why);
}

void Trainer::State::build_model() {
  model::ParallelPlacement placement;
  placement.tp = &grid->tp();
  placement.cp = &grid->cp();
  placement.tp_rank = grid->tp_rank();
  placement.tp_size = grid->tp_size();
  placement.pp_rank = grid->pp_rank();
  placement.pp_size = grid->pp_size();
  placement.sequence_parallel = recipe.parallel.sequence_parallel;
  const auto config = model::from_recipe(recipe.model, layout.tp);
  model = std::make_unique<model::Transformer>(config, storage_dtype(recipe.train.precision), placement, allocator());
  if (recipe.train.attention == config::AttentionBackend::cudnn) model->set_attention_library(ops::AttentionLibrary::cudnn);
  if (recipe.train.attention == config::AttentionBackend::flash_wgmma)
    model->set_attention_library(ops::AttentionLibrary::kiln_wgmma);
  model->set_recompute(model::recompute_of(recipe.train.recompute));

  loss_total = memory::DeviceBuffer(2 * sizeof(double), memory::MemoryCategory::workspace, allocator());
  if (layout.pp > 1) model->set_pipeline_slots(parallel::pipeline_slots(layout.pp, grid->pp_rank(), layout.micro_batches));
  for (int slot = 0; slot < model->pipeline_slots(); ++slot)
    device_batches.push_back(std::make_unique<model::DeviceBatch>(allocator()));
  const auto& params = model->parameters();
  data_parallel = std::make_unique<parallel::DataParallel>(grid->replicas(), params.numel(), params.grad_dtype(), layout.zero == 1,
                                                           model->gradient_final_offsets(), parallel::kDefaultBucketBytes,
                                                           parallel::kDefaultMinBucketBytes, allocator());
  // The tied embedding's gradient is completed by the embedding group after the backward.
  if (grid->embedding() && config.tie_embeddings) {
    const auto& embed = params.info("embed.weight");
    data_parallel->hold_back(embed.offset, embed.offset + embed.numel());
  }
  model->set_parameters_needed([this](std::int64_t below) { data_parallel->parameters_needed_below(below); });
  optimizer = std::make_unique<optim::AdamW>(
      params, optim::AdamWConfig{recipe.optim.beta1, recipe.optim.beta2, recipe.optim.eps, recipe.optim.weight_decay},
      data_parallel->shard_begin(), data_parallel->shard_end());
  flops_per_token = model::flops_per_token(config, recipe.train.seq_len);
  // Every long-lived buffer exists before the first step, so the banner's memory report is
  // the run's: the activation arenas and pipeline links for the (micro-batch, seq_len) of
  // every step and evaluation.
  // Each rank's micro-batches hold seq_len / cp tokens per row (context parallelism).
  const std::int64_t local_seq_len = recipe.train.seq_len / layout.cp;
  model->reserve_activations(layout.micro_batch_size, local_seq_len);
  pipeline_links.place_in(allocator());
  if (layout.pp > 1)
    pipeline_links.plan(layout.pp, grid->pp_rank(), model->stage_activation_shape(layout.micro_batch_size, local_seq_len),
                        params.dtype());
}

// This process's peaks from the memory ledger, the maximum of each over all ranks (every
// rank calls it).
metrics::MemoryPeaks Trainer::State::memory_peaks_over_ranks() const {
  // The device the run trains on (on CUDA, the host's buffers are the loader's and staging's).
  metrics::MemoryPeaks peaks = metrics::memory_peaks(memory::MemoryLedger::process().snapshot(device));
  std::array<double, memory::kMemoryCategories.size() + 1> values{};
  for (std::size_t i = 0; i < peaks.categories.size(); ++i) values[i] = static_cast<double>(peaks.categories[i]);
  values.back() = static_cast<double>(peaks.total);
  grid->control().all_reduce(Tensor::of(values.data(), {static_cast<std::int64_t>(values.size())}),
                             parallel::ReduceOp::Max);
  for (std::size_t i = 0; i < peaks.categories.size(); ++i) peaks.categories[i] = static_cast<std::uint64_t>(values[i]);
  peaks.total = static_cast<std::uint64_t>(values.back());
  return peaks;
}

void Trainer::State::resume_or_initialise() {
  if (root()) checkpoint::prepare_run_directory(run_dir);
  world->barrier();
  const auto found = recipe.run.resume ? checkpoint::find_latest_valid(recipe.checkpoints_dir(), messages())
                                       : std::optional<checkpoint::FoundCheckpoint>{};
  if (found) {
    const checkpoint::CheckpointReader reader(found->dir);
    load_weights(reader);
    checkpoint::read_optimizer(reader, model->parameters(), *optimizer);
    const auto& meta = reader.meta();
    step = meta.step;
    tokens_seen = meta.tokens_seen;
    optimizer->set_steps_taken(meta.extra.value("optimizer_steps", meta.step));
    skipped_steps = meta.extra.value("skipped_steps", std::int64_t{0});
    loader->restore(data::LoaderState::from_json(meta.loader));
    if (root()) {
      fmt::print("resuming from {} (step {}, {} tokens seen, written by dp={} tp={} pp={} zero={})\n",
                 found->dir.string(), step, tokens_seen, meta.layout.dp, meta.layout.tp, meta.layout.pp, meta.layout.zero);
    }
    return;
  }
  if (!recipe.model.init_from.empty()) {
    const auto source = checkpoint::resolve_checkpoint(recipe.model.init_from, messages());
    load_weights(checkpoint::CheckpointReader(source.dir));
    if (root()) fmt::print("initialised weights from {}\n", source.dir.string());
  } else {
    model->init_weights(static_cast<std::uint64_t>(recipe.train.seed));
    optimizer->masters_from_working_copy(model->parameters());
  }
}

// The stored fp32 values into the working copy (rounded under bf16) and, when the optimizer
// keeps its own masters, into them exactly: a checkpoint of either precision resumes either.
void Trainer::State::load_weights(const checkpoint::CheckpointReader& reader) {
  checkpoint::read_parameters(reader, model->parameters());
  if (optimizer->separate_masters()) checkpoint::read_masters(reader, model->parameters(), *optimizer);
}

// What this rank holds, gathered so rank 0 prints the whole grid in rank order.
void Trainer::State::print_banner() {
  const auto& m = model->config();
  const auto layers = model::stage_layers(m.n_layers, layout.pp, grid->pp_rank());
  std::string parts = fmt::format("layers [{}, {})", layers.first, layers.last);
  if (model->first_stage()) parts += " + embedding";
  if (model->last_stage()) parts += " + head/loss";
  const std::string line = fmt::format("  rank {:>3}: {} | {} | {} parameters{} | optimizer [{}, {}) | {} dp bucket(s), overlap {}",
                                       world->rank(), grid->describe(), parts, model->parameters().numel(),
                                       layout.tp > 1 ? fmt::format(" (tp shard {}/{})", grid->tp_rank(), layout.tp) : "",
                                       optimizer->begin(), optimizer->end(), data_parallel->buckets().size(),
                                       recipe.parallel.overlap_grad_reduce ? "on" : "off") +
                           (data_parallel->zero() ? fmt::format(", ZeRO gather overlap {}",
                                                                recipe.parallel.overlap_param_gather ? "on" : "off")
                                                  : std::string());
  const auto memory = memory_peaks_over_ranks();
  const auto& mpi = parallel::MpiEnvironment::instance();
  if (!root()) {
    mpi.send_bytes(line, 0, 41);
    return;
  }
  fmt::print("kiln {} | {} model: {} parameters, {} layers, d_model {}, {} heads ({} kv), vocab {} (padded {})\n",
             kVersion, model::family_name(m.family), metrics::format_count(static_cast<double>(model::parameter_count(m))),
             m.n_layers, m.d_model, m.n_heads, m.n_kv_heads, m.vocab_size, m.padded_vocab());
  fmt::print("device {} ({}) | train.precision {} | train.attention {} | layout dp={} tp={} pp={} cp={} zero={} on {} "
             "rank(s) x {} thread(s), data groups over {} | {} tokens/step = {} x {} | {} micro-batch(es) of {} per dp "
             "rank\n",
             device == Device::Cuda ? fmt::format("cuda, {}", cuda_device_name) : std::string("cpu"), device_choice,
             precision_banner(recipe.train.precision), attention_banner(recipe.train.attention),
             layout.dp, layout.tp, layout.pp, layout.cp, layout.zero, world->size(), omp_get_max_threads(),
             device == Device::Cuda ? "NCCL" : (world->size() > 1 ? "MPI" : "none (one rank)"),
             recipe.train.tokens_per_step(), recipe.train.batch_size, recipe.train.seq_len, layout.micro_batches,
             layout.micro_batch_size);
  fmt::print("{}\n", line);
  for (int rank = 1; rank < world->size(); ++rank) fmt::print("{}\n", mpi.receive_bytes(rank, 41));
  fmt::print("{}\n", metrics::memory_banner(memory, world->size()));
  fmt::print("train data {} ({} windows) | run dir {}\n", recipe.data.train, loader->num_windows(), run_dir.string());
}

// ---- one step -------------------------------------------------------------------------------

// Forward (and backward) of this rank's micro-batches; returns the loss summed on this rank
// (non-zero on the last stage only). The micro-batches' loss sums are added up as tensors and
// read back once, after the last micro-batch.
ops::LossSum Trainer::State::run_micro_batches(const std::vector<MicroBatch>& micro_batches, double grad_scale,
                                               bool backward) {
  const Tensor total = loss_total.view(DType::F64, {2});
  ops::zero(total);
  const auto add_loss = [&](Tensor loss_sum) {
    if (loss_sum.defined()) ops::add_to(total, loss_sum);
  };
  const auto on_model = [&](std::size_t micro, int slot) -> const model::Batch& {
    return device_batches[static_cast<std::size_t>(slot)]->upload(micro_batches[micro].view());
  };
  // Gradients become final during the last backward of the step only (earlier ones accumulate).
  const auto on_final = [&](std::size_t micro) {
    return backward && micro + 1 == micro_batches.size() ? gradients_final_hook() : model::Transformer::GradientsFinal{};
  };
  if (layout.pp == 1) {
    for (std::size_t micro = 0; micro < micro_batches.size(); ++micro) {
      add_loss(model->forward_stage(0, on_model(micro, 0), {}).loss_sum);
      if (backward) model->backward(grad_scale, on_final(micro));
    }
    return ops::read_loss_sum(total);
  }
  const auto& first = micro_batches.front();
  parallel::PipelineStage stage;
  stage.activation_shape = model->stage_activation_shape(first.rows, first.seq_len);
  stage.dtype = model->parameters().dtype();  // the activations' storage (bf16 under mixed precision)
  stage.forward = [&](int micro, int slot, Tensor input) {
    const auto result = model->forward_stage(slot, on_model(static_cast<std::size_t>(micro), slot), input);
    add_loss(result.loss_sum);
    return result.output;
  };
  stage.backward = [&](int micro, int slot, Tensor grad_output) {
    return model->backward_stage(slot, grad_output, grad_scale, on_final(static_cast<std::size_t>(micro)));
  };
  if (backward) {
    parallel::run_one_forward_one_backward(grid->pp(), static_cast<int>(micro_batches.size()), stage, pipeline_links);
  } else {
    parallel::run_forward_only(grid->pp(), static_cast<int>(micro_batches.size()), stage, pipeline_links);
  }
  return ops::read_loss_sum(total);
}

// With parallel.overlap_grad_reduce, the data-parallel buckets start as the backward finishes
// them; otherwise they all start in reduced_gradients(). Same buckets, same collectives.
model::Transformer::GradientsFinal Trainer::State::gradients_final_hook() {
  if (!data_parallel->in_progress()) return {};
  return [this](std::int64_t offset) { data_parallel->gradients_final_from(offset); };
}

Tensor Trainer::State::reduced_gradients() {
  if (data_parallel->in_progress()) return data_parallel->finish();
  return data_parallel->reduce_gradients(model->parameters().grads());
}

// The global mean loss, known on every rank: summed over dp, sent from the last stage.
double Trainer::State::reduce_loss(ops::LossSum local) {
  double totals[2] = {local.sum, static_cast<double>(local.count)};
  grid->control_replicas().all_reduce(Tensor::of(totals, {2}));
  grid->control_pp().broadcast(Tensor::of(totals, {2}), layout.pp - 1);
  return totals[1] > 0 ? totals[0] / totals[1] : 0.0;
}

// This rank's micro-batches of a loader batch: cut by rows and, under context parallelism, to
// this cp rank's two chunks of each row.
std::vector<MicroBatch> Trainer::State::this_ranks_micro_batches(const data::Batch& batch, const std::string& dataset) {
  auto micro_batches = split_micro_batches(batch, static_cast<std::uint64_t>(layout.micro_batch_size),
                                           {dataset, model::BatchLimits::of(model->config())});
  if (layout.cp > 1)
    for (auto& micro : micro_batches) micro = context_parallel_part(micro, grid->cp_rank(), layout.cp);
  return micro_batches;
}

double Trainer::State::train_step() {
  const auto micro_batches = this_ranks_micro_batches(loader->next_batch(), recipe.data.train);
  std::int64_t counted = 0;
  for (const auto& micro : micro_batches) counted += micro.counted_tokens();
  grid->control_replicas().all_reduce(Tensor::of(&counted, {1}));
  model->zero_grads();
  if (recipe.parallel.overlap_grad_reduce) data_parallel->start(model->parameters().grads());
  const double grad_scale = counted > 0 ? 1.0 / static_cast<double>(counted) : 0.0;
  const auto local = run_micro_batches(micro_batches, grad_scale, true);
  // Tied input/output embedding split over the first and last stage: both copies must get
  // the sum of both gradients (every rank of the group takes this branch, or none does).
  if (auto* ends = grid->embedding(); ends && model->config().tie_embeddings) {
    ends->all_reduce(model->parameters().grad("embed.weight"));
  }
  return reduce_loss(local);
}

// Reduces gradients over dp, clips and steps; false (on every rank) when they are not finite.
bool Trainer::State::apply_update(double lr, double& grad_norm) {
  auto& params = model->parameters();
  const Tensor grads = reduced_gradients();
  const Tensor owned = data_parallel->zero() ? grads : grads.narrow(0, optimizer->begin(), optimizer->end() - optimizer->begin());
  // Sequence parallelism: the norms' gradients are per-chunk shares until summed over tp (a sum,
  // like the dp reduction before it, so the order does not matter). A no-op without it.
  model->complete_sequence_parallel_gradients(owned, optimizer->begin());
  grad_norm = global_gradient_norm(params, *optimizer, owned, *grid, data_parallel->zero());
  if (!finite_everywhere(owned, *grid)) return false;
  optimizer->step(params, owned, lr, optim::AdamW::clip_factor(grad_norm, recipe.optim.grad_clip));
  // ZeRO: the other ranks' updated shards come back while the next step starts (its forward
  // waits for each bucket where its layers need it), or here.
  if (recipe.parallel.overlap_param_gather) {
    data_parallel->start_parameter_gather(params.values());
  } else {
    data_parallel->all_gather_parameters(params.values());
  }
  return true;
}

// Every rank must take the same decision to stop, or the collectives would hang.
bool Trainer::State::stop_agreed() {
  double stop = stop_requested() ? 1.0 : 0.0;
  grid->control().all_reduce(Tensor::of(&stop, {1}), parallel::ReduceOp::Max);
  return stop > 0.0;
}

// The validation loss, or nullopt when a stop signal came during the evaluation: it ends after
// the batch in flight, so a stop is as prompt during evaluation as during training.
std::optional<double> Trainer::State::validation_loss() {
  data_parallel->finish_parameter_gather();
  data::TokenLoaderOptions options;
  options.seq_len = static_cast<std::uint64_t>(recipe.train.seq_len);
  options.global_batch = static_cast<std::uint64_t>(recipe.train.batch_size);
  options.dp_rank = static_cast<std::uint64_t>(grid->dp_rank());
  options.dp_size = static_cast<std::uint64_t>(layout.dp);
  options.packed = recipe.data.packed;
  data::TokenLoader val_loader(val_data, options);  // seed 0: the same windows at every evaluation
  ops::LossSum local;
  for (std::int64_t index = 0; index < eval_batches; ++index) {
    if (stop_agreed()) {
      messages() << fmt::format("kiln: evaluation interrupted after {} of {} batches; no val_loss recorded\n", index,
                                eval_batches);
      return std::nullopt;
    }
    const auto loss = run_micro_batches(this_ranks_micro_batches(val_loader.next_batch(), recipe.data.val), 0.0, false);
    local.sum += loss.sum;
    local.count += loss.count;
  }
  return reduce_loss(local);
}

fs::path Trainer::State::save_checkpoint() {
  data_parallel->finish_parameter_gather();
  // Rank 0 first: it clears any stale temporary directory of this step.
  std::unique_ptr<checkpoint::CheckpointWriter> writer;
  if (root()) writer = std::make_unique<checkpoint::CheckpointWriter>(recipe.checkpoints_dir(), step, 0);
  world->barrier();
  if (!root()) writer = std::make_unique<checkpoint::CheckpointWriter>(recipe.checkpoints_dir(), step, world->rank());
  const bool zero = data_parallel->zero();
  // One copy of each piece: the first of the ranks that hold the same parameters (dp x cp), or
  // every one of them for its ZeRO shard.
  const int replica = grid->replica_rank();
  const auto writes_values = [&](const model::ParameterInfo& info) { return replica == 0 && counts_parameter(info, *grid); };
  const auto writes_moments = [&](const model::ParameterInfo& info) {
    return (zero || replica == 0) && counts_parameter(info, *grid);
  };
  // The fp32 values: the store's own, or (bf16 working copy) the optimizer's master shards.
  if (optimizer->separate_masters()) {
    checkpoint::write_masters(*writer, model->parameters(), *optimizer, writes_moments);
  } else {
    checkpoint::write_parameters(*writer, model->parameters(), writes_values);
  }
  checkpoint::write_optimizer(*writer, model->parameters(), *optimizer, writes_moments);
  writer->finish_rank_file();
  world->barrier();
  fs::path committed;
  if (root()) {
    checkpoint::CheckpointMeta meta;
    meta.step = step;
    meta.tokens_seen = tokens_seen;
    meta.recipe = config::recipe_to_json(recipe);
    meta.layout = layout;
    meta.loader = loader->state().to_json();
    meta.rng = {{"seed", recipe.train.seed}};
    meta.schedule = schedule.to_json();
    meta.extra = {{"optimizer_steps", optimizer->steps_taken()},
                  {"skipped_steps", skipped_steps},
                  {"precision", config::to_string(recipe.train.precision)}};
    meta.created_by = fmt::format("kiln {}", kVersion);
    writer->set_meta(std::move(meta));
    // The checkpoint carries its tokenizer, so eval and generate need nothing else.
    copy_file_or_fail(recipe.data.tokenizer, writer->temporary_dir() / "tokenizer.json", "tokenizer");
    committed = writer->commit(recipe.checkpoint.keep_last);
  }
  world->barrier();
  return committed.empty() ? recipe.checkpoints_dir() / checkpoint::step_dir_name(step) : committed;
}

// ---- the loop -------------------------------------------------------------------------------

TrainOutcome Trainer::run() {
  auto& s = *state_;
  s.print_banner();
  std::optional<metrics::MetricsLog> log;
  if (s.root()) {
    write_file_atomically(s.run_dir / "recipe.yaml", config::recipe_to_yaml(s.recipe));
    const auto run_tokenizer = s.run_dir / "tokenizer.json";
    std::error_code not_there;
    if (!fs::equivalent(s.recipe.data.tokenizer, run_tokenizer, not_there)) {
      copy_file_or_fail(s.recipe.data.tokenizer, run_tokenizer, "tokenizer");
    }
    log = s.step > 0 ? metrics::MetricsLog::resume(s.run_dir / "metrics.jsonl", s.step)
                     : metrics::MetricsLog::create(s.run_dir / "metrics.jsonl");
  }
  const StopSignalHandler stop_handler(s.root());
  metrics::ThroughputMeter throughput;
  const auto run_start = Clock::now();
  TrainOutcome outcome;
  int skipped_in_a_row = 0;
  const auto steps = s.recipe.train.steps;
  const auto tokens_per_step = s.recipe.train.tokens_per_step();

  bool stopping = false;
  while (s.step < steps && !stopping) {
    const auto step_start = Clock::now();
    const double lr = s.schedule.lr_at(s.step);
    parallel::set_watchdog_step(s.step + 1);
    const double loss = s.train_step();
    double norm = 0.0;
    if (!s.apply_update(lr, norm)) {
      ++s.skipped_steps;
      if (s.root()) {
        fmt::print(stderr, "kiln: warning: step {} has non-finite gradients (loss {}); the update was skipped\n",
                   s.step + 1, loss);
      }
      if (++skipped_in_a_row >= kMaxSkippedStepsInARow) {
        fail("training diverged: {} steps in a row had non-finite gradients (last at step {}); lower optim.lr or "
             "resume from an earlier checkpoint", skipped_in_a_row, s.step + 1);
      }
    } else {
      skipped_in_a_row = 0;
    }
    ++s.step;
    ++s.steps_this_run;
    s.tokens_seen += tokens_per_step;
    const double seconds = std::chrono::duration<double>(Clock::now() - step_start).count();
    throughput.record(tokens_per_step, seconds);
    outcome.last_loss = loss;

    const bool log_step = s.step % s.recipe.log.every_steps == 0 || s.step == steps;
    // A collective: every rank takes part on the steps the root logs.
    const auto memory = log_step ? std::optional(s.memory_peaks_over_ranks()) : std::nullopt;
    if (log && log_step) {
      metrics::StepMetrics record;
      record.step = s.step;
      record.loss = loss;
      record.lr = lr;
      record.grad_norm = norm;
      record.tokens_per_second = throughput.tokens_per_second();
      record.tokens_seen = s.tokens_seen;
      record.elapsed_seconds = std::chrono::duration<double>(Clock::now() - run_start).count();
      record.step_seconds = seconds;
      if (s.peak_flops > 0) {
        // The peak of one rank's cores times the ranks: what the whole job could do.
        record.mfu = metrics::model_flops_utilisation(s.flops_per_token, record.tokens_per_second,
                                                      s.peak_flops * s.world->size());
      }
      record.memory_peak_bytes = metrics::memory_record(*memory);
      record.precision = std::string(config::to_string(s.recipe.train.precision));
      log->write_step(record);
      metrics::ProgressLine line;
      line.step = s.step;
      line.total_steps = steps;
      line.loss = loss;
      line.lr = lr;
      line.grad_norm = norm;
      line.tokens_per_second = record.tokens_per_second;
      line.mfu = record.mfu;
      line.peak_flops = s.peak_flops * s.world->size();
      // Which peak: the CPU's fp32 FMA estimate, or the GPU's bf16 dense tensor-core figure.
      line.precision = s.device == Device::Cuda ? "bf16 dense" : "fp32";
      line.eta_seconds = throughput.eta_seconds(steps - s.step);
      fmt::print("{}\n", metrics::format_progress_line(line));
      std::fflush(stdout);
    }
    const bool last = s.step == steps;
    // Once every step is done only their checkpoint is left to make: a second signal waits for it.
    std::optional<StopSignalDeferral> finishing;
    if (last) finishing.emplace();
    if (s.val_data && ((s.recipe.eval.every_steps > 0 && s.step % s.recipe.eval.every_steps == 0) || last)) {
      const auto val_loss = s.validation_loss();
      if (log && val_loss) {
        log->write_eval(s.step, *val_loss);
        fmt::print("step {} | val_loss {:.4f}\n", s.step, *val_loss);
      }
    }
    stopping = s.stop_agreed();
    const bool periodic = s.recipe.checkpoint.every_steps > 0 && s.step % s.recipe.checkpoint.every_steps == 0;
    if (periodic || last || stopping) {
      const StopSignalDeferral saving;  // a checkpoint being written is finished, whatever comes
      outcome.last_checkpoint = s.save_checkpoint();
      if (s.root()) fmt::print("saved checkpoint {}\n", outcome.last_checkpoint.string());
    }
  }
  s.data_parallel->finish_parameter_gather();  // the model is whole again for whoever reads it next
  outcome.steps_done = s.step;
  outcome.stopped_by_signal = stopping;
  if (stopping && s.root()) {
    fmt::print("stopped by signal {} after step {}; re-run the same command to resume\n", stop_signal_number(), s.step);
  }
  return outcome;
}

namespace {

nlohmann::json traffic_of(const parallel::Communicator& comm, double steps) {
  const auto& t = comm.traffic();
  const auto per_step = [&](std::uint64_t bytes) { return static_cast<double>(bytes) / steps; };
  return {{"size", comm.size()},
          {"all_reduce", per_step(t.all_reduce)},
          {"reduce_scatter", per_step(t.reduce_scatter)},
          {"all_gather", per_step(t.all_gather)},
          {"broadcast", per_step(t.broadcast)},
          {"send", per_step(t.send)},
          {"total", per_step(t.total())}};
}

}  // namespace

void Trainer::write_traffic_report(const std::filesystem::path& path) const {
  const auto& s = *state_;
  const double steps = std::max<double>(1.0, static_cast<double>(s.steps_this_run));
  nlohmann::json report = {{"rank", s.world->rank()},
                           {"dp", s.grid->dp_rank()},
                           {"cp", s.grid->cp_rank()},
                           {"tp", s.grid->tp_rank()},
                           {"pp", s.grid->pp_rank()},
                           {"steps", s.steps_this_run},
                           {"bytes_sent_per_step",
                            {{"tp", traffic_of(s.grid->tp(), steps)},
                             {"dp", traffic_of(s.grid->replicas(), steps)},
                             {"cp", traffic_of(s.grid->cp(), steps)},
                             {"pp", traffic_of(s.grid->pp(), steps)},
                             {"world", traffic_of(*s.world, steps)}}}};
  if (auto* ends = s.grid->embedding()) report["bytes_sent_per_step"]["embedding"] = traffic_of(*ends, steps);
  std::ofstream(path.string() + fmt::format(".rank{}.json", s.world->rank())) << report.dump(2) << "\n";
}

}  // namespace kiln::train
