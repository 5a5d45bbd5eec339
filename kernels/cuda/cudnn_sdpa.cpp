// cuDNN's fused attention through the cuDNN frontend (kernels/cuda/cudnn_sdpa.hpp): the graphs,
// their host-side validation, and on the GPU their plans and execution.
#include "kernels/cuda/cudnn_sdpa.hpp"

#include <dlfcn.h>

#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "trainer/core/error.hpp"

#if KILN_WITH_CUDNN_FRONTEND
#include <cuda_runtime.h>

#include <cudnn_frontend.h>

// The frontend loads cuDNN through this handle (NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING), so
// kiln starts without libcudnn and only `train.attention: cudnn` needs it.
namespace cudnn_frontend {
void* cudnn_dlhandle = nullptr;
}
#endif

namespace kiln::cudnn_sdpa {

#if KILN_WITH_CUDNN_FRONTEND

namespace fe = cudnn_frontend;

namespace {

// libcudnn.so.9 opened once per process; `why` is empty when it loaded.
struct Library {
  std::string why;
  Library() {
    void* handle = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_GLOBAL);
    if (handle == nullptr) {
      const char* error = dlerror();
      why = std::string("libcudnn.so.9 (cuDNN 9) does not load: ") + (error ? error : "unknown error") +
            "; install cuDNN 9 (Debian/Ubuntu: libcudnn9-cuda-13, or pip's nvidia-cudnn-cu13 on LD_LIBRARY_PATH)";
      return;
    }
    fe::cudnn_dlhandle = handle;
  }
};

const Library& library() {
  static const Library loaded;
  return loaded;
}

void require_library() {
  std::string why;
  if (!available(&why)) fail("cudnn attention: {}", why);
}

// Tensor uids of the graphs' variant packs.
enum Uid : std::int64_t {
  kQ = 1, kK, kV, kO, kStats, kDo, kDq, kDk, kDv, kSequenceLengths,
  kQOffsets, kKOffsets, kVOffsets, kOOffsets, kStatsOffsets,
};

using Shared = std::shared_ptr<fe::graph::Tensor_attributes>;

Shared index_tensor(fe::graph::Graph& graph, const char* name, Uid uid, std::int64_t count, fe::DataType_t type) {
  return graph.tensor(fe::graph::Tensor_attributes()
                          .set_name(name)
                          .set_uid(uid)
                          .set_dim({count, 1, 1, 1})
                          .set_stride({1, 1, 1, 1})
                          .set_data_type(type));
}

// A [sequences, heads, max_len, dim] tensor of `layout`, found through its ragged offsets.
// The batch stride only sizes the tensor for the frontend; the offsets place each sequence.
fe::graph::Tensor_attributes head_tensor(const Problem& p, const char* name, Uid uid, std::int64_t heads,
                                         const TensorLayout& layout, const Shared& offsets) {
  return fe::graph::Tensor_attributes()
      .set_name(name)
      .set_uid(uid)
      .set_dim({p.sequences, heads, p.max_len, p.dim})
      .set_stride({p.max_len * layout.position_stride, layout.head_stride, layout.position_stride, 1})
      .set_ragged_offset(offsets);
}

// The stats' token-major [sequences, heads, max_len, 1] layout (cudnn_sdpa.hpp).
void stats_layout(const Problem& p, fe::graph::Tensor_attributes& stats, const Shared& offsets) {
  stats.set_dim({p.sequences, p.heads, p.max_len, 1})
      .set_stride({p.max_len * p.heads, 1, p.heads, 1})
      .set_data_type(fe::DataType_t::FLOAT)
      .set_ragged_offset(offsets);
}

struct Offsets {
  Shared q, k, v, o, stats, lengths;
};

std::shared_ptr<fe::graph::Graph> new_graph(Offsets& offsets, const Problem& p) {
  auto graph = std::make_shared<fe::graph::Graph>();
  graph->set_io_data_type(fe::DataType_t::BFLOAT16)
      .set_intermediate_data_type(fe::DataType_t::FLOAT)
      .set_compute_data_type(fe::DataType_t::FLOAT);
  graph->set_sm_version(90);  // validation without a device aims at Hopper; a build re-reads the GPU
  const std::int64_t count = p.sequences + 1;
  offsets.q = index_tensor(*graph, "q_offsets", kQOffsets, count, fe::DataType_t::INT64);
  offsets.k = index_tensor(*graph, "k_offsets", kKOffsets, count, fe::DataType_t::INT64);
  offsets.v = index_tensor(*graph, "v_offsets", kVOffsets, count, fe::DataType_t::INT64);
  offsets.o = index_tensor(*graph, "o_offsets", kOOffsets, count, fe::DataType_t::INT64);
  offsets.stats = index_tensor(*graph, "stats_offsets", kStatsOffsets, count, fe::DataType_t::INT64);
  offsets.lengths = index_tensor(*graph, "sequence_lengths", kSequenceLengths, p.sequences, fe::DataType_t::INT32);
  return graph;
}

// The attention's inputs q, k, v, in both graphs.
std::tuple<Shared, Shared, Shared> input_tensors(fe::graph::Graph& graph, const Problem& p, const Offsets& off) {
  return {graph.tensor(head_tensor(p, "q", kQ, p.heads, p.q, off.q)),
          graph.tensor(head_tensor(p, "k", kK, p.kv_heads, p.k, off.k)),
          graph.tensor(head_tensor(p, "v", kV, p.kv_heads, p.v, off.v))};
}

std::shared_ptr<fe::graph::Graph> forward_graph(const Problem& p) {
  Offsets off;
  auto graph = new_graph(off, p);
  auto [q, k, v] = input_tensors(*graph, p, off);
  auto options = fe::graph::SDPA_attributes()
                     .set_name("kiln_sdpa_forward")
                     .set_generate_stats(true)
                     .set_attn_scale(p.scale)
                     .set_padding_mask(true)
                     .set_seq_len_q(off.lengths)
                     .set_seq_len_kv(off.lengths);
  if (p.causal) options.set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT).set_diagonal_band_right_bound(0);
  auto [o, stats] = graph->sdpa(q, k, v, options);
  o->set_output(true)
      .set_uid(kO)
      .set_dim({p.sequences, p.heads, p.max_len, p.dim})
      .set_stride({p.max_len * p.o.position_stride, p.o.head_stride, p.o.position_stride, 1})
      .set_ragged_offset(off.o);
  stats->set_output(true).set_uid(kStats);
  stats_layout(p, *stats, off.stats);
  return graph;
}

std::shared_ptr<fe::graph::Graph> backward_graph(const Problem& p) {
  Offsets off;
  auto graph = new_graph(off, p);
  auto [q, k, v] = input_tensors(*graph, p, off);
  auto o = graph->tensor(head_tensor(p, "o", kO, p.heads, p.o, off.o));
  auto d_o = graph->tensor(head_tensor(p, "do", kDo, p.heads, p.o, off.o));
  fe::graph::Tensor_attributes stats_attributes;
  stats_attributes.set_name("stats").set_uid(kStats);
  stats_layout(p, stats_attributes, off.stats);
  auto stats = graph->tensor(stats_attributes);
  auto options = fe::graph::SDPA_backward_attributes()
                     .set_name("kiln_sdpa_backward")
                     .set_attn_scale(p.scale)
                     .set_padding_mask(true)
                     .set_seq_len_q(off.lengths)
                     .set_seq_len_kv(off.lengths)
                     .set_deterministic_algorithm(true);  // bit-for-bit resume
  if (p.causal) options.set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT).set_diagonal_band_right_bound(0);
  auto [dq, dk, dv] = graph->sdpa_backward(q, k, v, o, d_o, stats, options);
  const auto gradient = [&](const Shared& x, Uid uid, std::int64_t heads, const TensorLayout& layout, const Shared& at) {
    x->set_output(true)
        .set_uid(uid)
        .set_dim({p.sequences, heads, p.max_len, p.dim})
        .set_stride({p.max_len * layout.position_stride, layout.head_stride, layout.position_stride, 1})
        .set_ragged_offset(at);
  };
  gradient(dq, kDq, p.heads, p.q, off.q);
  gradient(dk, kDk, p.kv_heads, p.k, off.k);
  gradient(dv, kDv, p.kv_heads, p.v, off.v);
  return graph;
}

void check(fe::error_t status, const char* stage, const Problem& p) {
  if (status.is_good()) return;
  fail("cudnn attention: cuDNN refuses the {} ({} sequences x {} positions, {} query / {} kv heads, head dim {}): {}",
       stage, p.sequences, p.max_len, p.heads, p.kv_heads, p.dim, status.get_message());
}

void check_problem(const Problem& p) {
  if (p.sequences < 1 || p.max_len < 1 || p.heads < 1 || p.kv_heads < 1 || p.dim < 1)
    fail("cudnn attention: sequences, max_len, heads, kv_heads and dim must be positive");
  if (p.heads % p.kv_heads != 0)
    fail("cudnn attention: {} query heads are not a multiple of {} kv heads", p.heads, p.kv_heads);
}

}  // namespace

bool available(std::string* why) {
  const std::string& problem = library().why;
  if (why) *why = problem;
  return problem.empty();
}

std::string library_version() {
  std::string why;
  if (!available(&why)) return "not available (" + why + ")";
  const std::int64_t version = fe::detail::get_backend_version();  // 91900 -> 9.19.0
  return std::to_string(version / 10000) + "." + std::to_string(version % 10000 / 100) + "." +
         std::to_string(version % 100);
}

void validate_forward(const Problem& problem) {
  require_library();
  check_problem(problem);
  check(forward_graph(problem)->validate(), "forward graph", problem);
}

void validate_backward(const Problem& problem) {
  require_library();
  check_problem(problem);
  check(backward_graph(problem)->validate(), "backward graph", problem);
}

// ---- the GPU side ------------------------------------------------------------------------

namespace {

using ProblemKey = std::tuple<bool, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool, float,
                              std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                              std::int64_t, std::int64_t>;

ProblemKey key_of(bool backward, const Problem& p) {
  return {backward,          p.sequences,          p.max_len,         p.heads,
          p.kv_heads,        p.dim,                p.causal,          p.scale,
          p.q.head_stride,   p.q.position_stride,  p.k.head_stride,   p.k.position_stride,
          p.v.head_stride,   p.v.position_stride,  p.o.head_stride,   p.o.position_stride};
}

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("cudnn attention: {}: {} ({})", what, cudaGetErrorName(status), cudaGetErrorString(status));
}

}  // namespace

struct Runner::State {
  cudnnHandle_t handle = nullptr;
  std::map<ProblemKey, std::shared_ptr<fe::graph::Graph>> graphs;
  void* workspace = nullptr;
  std::int64_t workspace_bytes = 0;

  // The built graph for `problem`: validated, lowered, its plan chosen by heuristic A.
  fe::graph::Graph& graph(bool backward, const Problem& problem) {
    auto& slot = graphs[key_of(backward, problem)];
    if (slot) return *slot;
    auto built = backward ? backward_graph(problem) : forward_graph(problem);
    const char* stage = backward ? "backward graph" : "forward graph";
    check(built->validate(), stage, problem);
    check(built->build_operation_graph(handle), stage, problem);
    check(built->create_execution_plans({fe::HeurMode_t::A}), stage, problem);
    check(built->check_support(handle), stage, problem);
    check(built->build_plans(handle), stage, problem);
    std::int64_t bytes = 0;
    check(built->get_workspace_size(bytes), stage, problem);
    grow_workspace(bytes);
    slot = std::move(built);
    return *slot;
  }

  // The first steps build every graph; the workspace then stays, so a step allocates nothing.
  void grow_workspace(std::int64_t bytes) {
    if (bytes <= workspace_bytes) return;
    check_cuda(cudaDeviceSynchronize(), "waiting to grow the workspace");
    if (workspace) check_cuda(cudaFree(workspace), "freeing the workspace");
    workspace = nullptr;
    check_cuda(cudaMalloc(&workspace, static_cast<std::size_t>(bytes)), "allocating the workspace");
    workspace_bytes = bytes;
  }

  void run(bool backward, const Problem& problem, std::unordered_map<std::int64_t, void*>& pack, void* stream) {
    fe::graph::Graph& built = graph(backward, problem);
    if (fe::detail::set_stream(handle, static_cast<cudaStream_t>(stream)) != CUDNN_STATUS_SUCCESS)
      fail("cudnn attention: cudnnSetStream failed");
    check(built.execute(handle, pack, workspace), backward ? "backward execution" : "forward execution", problem);
  }
};

Runner::Runner() : state_(std::make_unique<State>()) {
  require_library();
  const cudnnStatus_t status = fe::detail::create_handle(&state_->handle);
  if (status != CUDNN_STATUS_SUCCESS)
    fail("cudnn attention: cudnnCreate failed: {}", fe::detail::get_error_string(status));
}

Runner::~Runner() {
  if (state_->workspace) cudaFree(state_->workspace);
  if (state_->handle) fe::detail::destroy_handle(state_->handle);
}

std::size_t Runner::built_graphs() const { return state_->graphs.size(); }

namespace {
void* mutable_pointer(const void* p) { return const_cast<void*>(p); }  // the variant pack is untyped

// The variant pack's entries every graph shares: the ragged description.
void add_ragged(std::unordered_map<std::int64_t, void*>& pack, const RaggedTables& ragged) {
  pack[kSequenceLengths] = mutable_pointer(ragged.sequence_lengths);
  pack[kQOffsets] = mutable_pointer(ragged.q_offsets);
  pack[kKOffsets] = mutable_pointer(ragged.k_offsets);
  pack[kVOffsets] = mutable_pointer(ragged.v_offsets);
  pack[kOOffsets] = mutable_pointer(ragged.o_offsets);
  pack[kStatsOffsets] = mutable_pointer(ragged.stats_offsets);
}
}  // namespace

void Runner::forward(const Problem& problem, const ForwardPointers& x, void* stream) {
  check_problem(problem);
  std::unordered_map<std::int64_t, void*> pack = {{kQ, mutable_pointer(x.q)}, {kK, mutable_pointer(x.k)},
                                                  {kV, mutable_pointer(x.v)}, {kO, x.o},
                                                  {kStats, x.stats}};
  add_ragged(pack, x.ragged);
  state_->run(false, problem, pack, stream);
}

void Runner::backward(const Problem& problem, const BackwardPointers& x, void* stream) {
  check_problem(problem);
  std::unordered_map<std::int64_t, void*> pack = {
      {kQ, mutable_pointer(x.q)},   {kK, mutable_pointer(x.k)},         {kV, mutable_pointer(x.v)},
      {kO, mutable_pointer(x.o)},   {kDo, mutable_pointer(x.d_o)},      {kStats, mutable_pointer(x.stats)},
      {kDq, x.dq},                  {kDk, x.dk},                        {kDv, x.dv}};
  add_ragged(pack, x.ragged);
  state_->run(true, problem, pack, stream);
}

#else  // built without the cuDNN frontend

namespace {
constexpr const char* kNotBuilt =
    "this kiln was built without the cuDNN frontend (run scripts/fetch_cudnn_frontend.sh, or scripts/setup.sh, "
    "on a machine with the CUDA toolkit, then rebuild)";
}

bool available(std::string* why) {
  if (why) *why = kNotBuilt;
  return false;
}
std::string library_version() { return std::string("not available (") + kNotBuilt + ")"; }
void validate_forward(const Problem&) { fail("cudnn attention: {}", kNotBuilt); }
void validate_backward(const Problem&) { fail("cudnn attention: {}", kNotBuilt); }

struct Runner::State {};
Runner::Runner() { fail("cudnn attention: {}", kNotBuilt); }
Runner::~Runner() = default;
std::size_t Runner::built_graphs() const { return 0; }
void Runner::forward(const Problem&, const ForwardPointers&, void*) { fail("cudnn attention: {}", kNotBuilt); }
void Runner::backward(const Problem&, const BackwardPointers&, void*) { fail("cudnn attention: {}", kNotBuilt); }

#endif

}  // namespace kiln::cudnn_sdpa
