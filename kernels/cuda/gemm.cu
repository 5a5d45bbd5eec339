// GEMM on the device (kernels/cuda/gemm.hpp): the shared contract check, the emulated
// device's host implementation and the GPU's cuBLASLt calls.
#include "kernels/cuda/gemm.hpp"

#include <cstring>
#include <string>
#include <vector>

#if KILN_CUDA_EMULATED
#include <bit>

#include "kernels/tensor.hpp"  // bf16 conversions, as the CPU backend rounds
#else
#include <cublasLt.h>
#endif

namespace kiln::KILN_CUDA_NS {

namespace {

[[noreturn]] void refuse(const std::string& problem) { cuda_launch::fail_kernel_argument("gemm", problem.c_str()); }

std::size_t size_of(GemmType type) { return type == GemmType::F32 ? 4 : 2; }
const char* name_of(GemmType type) { return type == GemmType::F32 ? "f32" : "bf16"; }

// Stored rows x row length of an operand: [rows, cols] as it lies in memory.
struct Stored {
  std::int64_t rows, cols;
};
Stored stored_a(const GemmCall& c) { return c.transpose_a ? Stored{c.k, c.m} : Stored{c.m, c.k}; }
Stored stored_b(const GemmCall& c) { return c.transpose_b ? Stored{c.n, c.k} : Stored{c.k, c.n}; }

void check_operand(const char* name, const void* data, GemmType type, std::int64_t ld, Stored stored) {
  if (data == nullptr) refuse(std::string(name) + " is null");
  if (reinterpret_cast<std::uintptr_t>(data) % size_of(type) != 0)
    refuse(std::string(name) + " is not aligned to its " + name_of(type) + " elements");
  if (ld < stored.cols)
    refuse(std::string("ld") + name + " " + std::to_string(ld) + " is less than its stored row length " +
           std::to_string(stored.cols));
#if KILN_CUDA_EMULATED
  const std::size_t bytes = static_cast<std::size_t>((stored.rows - 1) * ld + stored.cols) * size_of(type);
  if (!kiln::emu::is_device_pointer(data) || !kiln::emu::is_device_pointer(static_cast<const char*>(data) + bytes - 1))
    refuse(std::string(name) + " is not (all) device memory: cuBLASLt reads it on the GPU");
#else
  (void)stored.rows;
#endif
}

// [first, last) byte range an operand spans.
std::pair<std::uintptr_t, std::uintptr_t> span_of(const void* data, GemmType type, std::int64_t ld, Stored stored) {
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  return {begin, begin + static_cast<std::uintptr_t>((stored.rows - 1) * ld + stored.cols) * size_of(type)};
}

bool overlaps(std::pair<std::uintptr_t, std::uintptr_t> x, std::pair<std::uintptr_t, std::uintptr_t> y) {
  return x.first < y.second && y.first < x.second;
}

// What makes two calls the same shape for the algorithm cache.
using ShapeKey = std::tuple<bool, bool, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                            std::int64_t, int, int, bool>;

ShapeKey key_of(const GemmCall& c) {
  return {c.transpose_a, c.transpose_b, c.m, c.n, c.k, c.a.ld, c.b.ld, c.ldc, static_cast<int>(c.a.type),
          static_cast<int>(c.c_type), c.bias != nullptr};
}

}  // namespace

void check_gemm_call(const GemmCall& call) {
  if (call.m < 1 || call.n < 1 || call.k < 1)
    refuse("m, n, k must be at least 1 (got " + std::to_string(call.m) + ", " + std::to_string(call.n) + ", " +
           std::to_string(call.k) + ")");
  if (call.a.type != call.b.type)
    refuse(std::string("a is ") + name_of(call.a.type) + " but b is " + name_of(call.b.type) +
           "; both inputs share one dtype");
  if (call.a.type == GemmType::F32 && call.c_type != GemmType::F32)
    refuse("f32 inputs write an f32 c (bf16 c needs bf16 inputs)");
  check_operand("a", call.a.data, call.a.type, call.a.ld, stored_a(call));
  check_operand("b", call.b.data, call.b.type, call.b.ld, stored_b(call));
  check_operand("c", call.c, call.c_type, call.ldc, {call.m, call.n});
  if (call.bias != nullptr) check_operand("bias", call.bias, call.c_type, call.n, {1, call.n});
  const auto c_span = span_of(call.c, call.c_type, call.ldc, {call.m, call.n});
  if (overlaps(c_span, span_of(call.a.data, call.a.type, call.a.ld, stored_a(call))) ||
      overlaps(c_span, span_of(call.b.data, call.b.type, call.b.ld, stored_b(call))))
    refuse("c overlaps a or b (cuBLASLt reads its inputs while it writes c)");
}

// ---- the emulated device: the contract, then the product on the host ------------------------

#if KILN_CUDA_EMULATED

namespace {

float load(const void* data, GemmType type, std::int64_t index) {
  if (type == GemmType::F32) return static_cast<const float*>(data)[index];
  return kiln::to_float(kiln::BFloat16{std::bit_cast<std::uint16_t>(static_cast<const __nv_bfloat16*>(data)[index])});
}

void store(void* data, GemmType type, std::int64_t index, float value) {
  if (type == GemmType::F32) {
    static_cast<float*>(data)[index] = value;
  } else {
    static_cast<__nv_bfloat16*>(data)[index] = std::bit_cast<__nv_bfloat16>(kiln::to_bfloat16(value).bits);
  }
}

}  // namespace

struct GemmContext::Plans {
  std::map<ShapeKey, int> chosen;  // what the GPU side caches; here only counted
};

GemmContext::GemmContext(std::size_t workspace_bytes) : plans_(std::make_unique<Plans>()), workspace_bytes_(workspace_bytes) {}
GemmContext::~GemmContext() = default;

std::size_t GemmContext::cached_algorithms() const { return plans_->chosen.size(); }

// Each output: the products summed in k order in double, scaled, plus beta C and the bias,
// rounded once to C's dtype (cuBLASLt accumulates in fp32 in an order of its own; the tests'
// tolerances cover both).
void GemmContext::run(const GemmCall& call, cudaStream_t /*stream*/) {
  check_gemm_call(call);
  plans_->chosen.emplace(key_of(call), 0);
  for (std::int64_t i = 0; i < call.m; ++i) {
    for (std::int64_t j = 0; j < call.n; ++j) {
      double sum = 0.0;
      for (std::int64_t p = 0; p < call.k; ++p) {
        const std::int64_t a_at = call.transpose_a ? p * call.a.ld + i : i * call.a.ld + p;
        const std::int64_t b_at = call.transpose_b ? j * call.b.ld + p : p * call.b.ld + j;
        sum += static_cast<double>(load(call.a.data, call.a.type, a_at)) * load(call.b.data, call.b.type, b_at);
      }
      double value = static_cast<double>(call.alpha) * sum;
      if (call.beta != 0.0f) value += static_cast<double>(call.beta) * load(call.c, call.c_type, i * call.ldc + j);
      if (call.bias != nullptr) value += load(call.bias, call.c_type, j);
      store(call.c, call.c_type, i * call.ldc + j, static_cast<float>(value));
    }
  }
}

// ---- the GPU: cuBLASLt ---------------------------------------------------------------------

#else

namespace {

void check_lt(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  const std::string message = std::string(what) + ": cuBLASLt status " + std::to_string(static_cast<int>(status));
  refuse(message);
}

cudaDataType_t lt_type(GemmType type) { return type == GemmType::F32 ? CUDA_R_32F : CUDA_R_16BF; }

// One shape's descriptors and chosen algorithm.
struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

}  // namespace

struct GemmContext::Plans {
  cublasLtHandle_t handle = nullptr;
  std::map<ShapeKey, Plan> chosen;

  ~Plans() {
    for (auto& [key, plan] : chosen) {
      cublasLtMatrixLayoutDestroy(plan.a);
      cublasLtMatrixLayoutDestroy(plan.b);
      cublasLtMatrixLayoutDestroy(plan.c);
      cublasLtMatmulDescDestroy(plan.op);
    }
    if (handle) cublasLtDestroy(handle);
  }
};

GemmContext::GemmContext(std::size_t workspace_bytes)
    : plans_(std::make_unique<Plans>()), workspace_bytes_(workspace_bytes) {
  check_lt(cublasLtCreate(&plans_->handle), "cublasLtCreate");
  if (cudaMalloc(&workspace_, workspace_bytes_) != cudaSuccess) {
    (void)cudaGetLastError();
    refuse("cannot allocate the " + std::to_string(workspace_bytes_ >> 20) + " MiB cuBLASLt workspace");
  }
}

GemmContext::~GemmContext() {
  if (workspace_) cudaFree(workspace_);
}

std::size_t GemmContext::cached_algorithms() const { return plans_->chosen.size(); }

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLASLt's first operand
// is B (untransposed when B is stored [k, n]), its second A, and its output C^T [n, m].
void GemmContext::run(const GemmCall& call, cudaStream_t stream) {
  check_gemm_call(call);
  auto found = plans_->chosen.find(key_of(call));
  if (found == plans_->chosen.end()) {
    Plan plan;
    check_lt(cublasLtMatmulDescCreate(&plan.op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
    const cublasOperation_t op_first = call.transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_second = call.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    check_lt(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof op_first),
             "TRANSA");
    check_lt(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof op_second),
             "TRANSB");
    if (call.bias != nullptr) {
      const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
      check_lt(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue),
               "EPILOGUE");
    }
    // Column-major layouts: B stored [k, n] row-major is [n, k] column-major, and so on.
    const Stored sb = stored_b(call), sa = stored_a(call);
    check_lt(cublasLtMatrixLayoutCreate(&plan.a, lt_type(call.b.type), static_cast<std::uint64_t>(sb.cols),
                                        static_cast<std::uint64_t>(sb.rows), call.b.ld),
             "layout of b");
    check_lt(cublasLtMatrixLayoutCreate(&plan.b, lt_type(call.a.type), static_cast<std::uint64_t>(sa.cols),
                                        static_cast<std::uint64_t>(sa.rows), call.a.ld),
             "layout of a");
    check_lt(cublasLtMatrixLayoutCreate(&plan.c, lt_type(call.c_type), static_cast<std::uint64_t>(call.n),
                                        static_cast<std::uint64_t>(call.m), call.ldc),
             "layout of c");
    cublasLtMatmulPreference_t preference = nullptr;
    check_lt(cublasLtMatmulPreferenceCreate(&preference), "cublasLtMatmulPreferenceCreate");
    check_lt(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                  &workspace_bytes_, sizeof workspace_bytes_),
             "workspace preference");
    cublasLtMatmulHeuristicResult_t result{};
    int count = 0;
    const cublasStatus_t status = cublasLtMatmulAlgoGetHeuristic(plans_->handle, plan.op, plan.a, plan.b, plan.c,
                                                                 plan.c, preference, 1, &result, &count);
    cublasLtMatmulPreferenceDestroy(preference);
    check_lt(status, "cublasLtMatmulAlgoGetHeuristic");
    if (count == 0) refuse("cuBLASLt has no algorithm for this shape and layout");
    plan.algo = result.algo;
    found = plans_->chosen.emplace(key_of(call), plan).first;
  }
  Plan& plan = found->second;
  if (call.bias != nullptr)
    check_lt(cublasLtMatmulDescSetAttribute(plan.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &call.bias, sizeof call.bias),
             "BIAS_POINTER");
  check_lt(cublasLtMatmul(plans_->handle, plan.op, &call.alpha, call.b.data, plan.a, call.a.data, plan.b, &call.beta,
                          call.c, plan.c, call.c, plan.c, &plan.algo, workspace_, workspace_bytes_, stream),
           "cublasLtMatmul");
}

#endif

}  // namespace kiln::KILN_CUDA_NS
