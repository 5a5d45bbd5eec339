#include "kernels/cuda/emulation/warpgroup_mma.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "kernels/cuda/emulation/execution.hpp"
#include "kernels/cuda/mma_fragment_layout.hpp"
#include "kernels/tensor.hpp"
#include "trainer/core/error.hpp"

namespace kiln::emu {

// The 16-byte rows (of core matrices) an mma read, with their bytes at issue; checked once, at
// the first wait of any thread of the warpgroup for it (the mma is complete from then on).
struct SharedSnapshot {
  std::vector<std::pair<const unsigned char*, std::array<unsigned char, 16>>> rows;
  mutable bool checked = false;
};

namespace {

constexpr int kM = 64, kK = 16;
constexpr std::uint32_t kFieldMask = 0x3FFFF;  // matrix-descriptor-encode keeps 18 bits, drops 4

float bf16_at(const unsigned char* p) {
  std::uint16_t bits;
  std::memcpy(&bits, p, 2);
  return kiln::to_float(kiln::BFloat16{bits});
}

float bf16_half(unsigned word, int i) {
  return kiln::to_float(kiln::BFloat16{static_cast<std::uint16_t>(i & 1 ? word >> 16 : word & 0xFFFFu)});
}

// The byte offset of element (mn, k) of an operand in the canonical no-swizzle layout: core
// matrices of 8 rows x 16 bytes, the next core matrix along K `leading` bytes on, along M or N
// `stride` bytes on. K-major: a core matrix row is 8 consecutive k of one mn; MN-major: 8
// consecutive mn of one k. (PTX ISA, canonical layouts ((8,m),(T,2k)):((1T,SBO),(1,LBO)) and
// ((T,1,m),(8,k)):((1,T,SBO),(1T,LBO)) with T = 8.)
std::uint32_t element_offset(const MatrixDescriptor& d, int mn, int k, bool mn_major) {
  const std::uint32_t core = static_cast<std::uint32_t>(mn / 8) * d.stride_bytes + static_cast<std::uint32_t>(k / 8) * d.leading_bytes;
  const int row = mn_major ? k % 8 : mn % 8, column = mn_major ? mn % 8 : k % 8;
  return d.start + core + static_cast<std::uint32_t>(16 * row + 2 * column);
}

// Reads an operand of `rows` (M or N) x 16 (K) through its descriptor into x[mn][k], noting
// every 16-byte row read in `snapshot`.
void read_operand(std::vector<std::array<float, kK>>& x, int rows, std::uint64_t bits, bool mn_major,
                  SharedSnapshot& snapshot, const char* which) {
  const MatrixDescriptor d = decode_matrix_descriptor(bits);
  if (d.swizzle != 0)
    kiln::fail("wgmma: the {} descriptor asks for swizzle mode {}; the emulator has only the no-swizzle layout", which,
               d.swizzle);
  const unsigned char* shared = dynamic_shared_memory();
  const std::size_t size = dynamic_shared_size();
  x.assign(static_cast<std::size_t>(rows), {});
  for (int mn = 0; mn < rows; ++mn) {
    for (int k = 0; k < kK; ++k) {
      const std::uint32_t offset = element_offset(d, mn, k, mn_major);
      if (offset + 2 > size)
        kiln::fail("wgmma: the {} operand's element ({}, {}) is at shared byte {}, past the {} bytes of dynamic shared "
                   "memory (descriptor start {}, leading {}, stride {})",
                   which, mn, k, offset, size, d.start, d.leading_bytes, d.stride_bytes);
      x[static_cast<std::size_t>(mn)][static_cast<std::size_t>(k)] = bf16_at(shared + offset);
    }
  }
  // The core-matrix rows: one per (mn, k / 8) in K-major, per (k, mn / 8) in MN-major.
  for (int a = 0; a < (mn_major ? kK : rows); ++a)
    for (int b = 0; b < (mn_major ? rows / 8 : kK / 8); ++b) {
      const std::uint32_t offset = mn_major ? element_offset(d, 8 * b, a, true) : element_offset(d, a, 8 * b, false);
      std::array<unsigned char, 16> bytes;
      std::memcpy(bytes.data(), shared + offset, 16);
      snapshot.rows.emplace_back(shared + offset, bytes);
    }
}

// Fails when a row read overlaps bytes some thread's cp.async landed with no
// fence.proxy.async.shared::cta by that thread since (the async proxy may not see them).
void check_async_proxy_order(const SharedSnapshot& snapshot) {
  std::uintptr_t lo = std::numeric_limits<std::uintptr_t>::max(), hi = 0;
  for (const auto& [row, bytes] : snapshot.rows) {
    lo = std::min(lo, reinterpret_cast<std::uintptr_t>(row));
    hi = std::max(hi, reinterpret_cast<std::uintptr_t>(row) + 16);
  }
  for_each_thread_warpgroup_mma_state([&](WarpgroupMmaState& state) {
    for (const auto& [begin, end] : state.unfenced_copies) {
      if (end <= lo || begin >= hi) continue;
      for (const auto& [row, bytes] : snapshot.rows) {
        const auto r = reinterpret_cast<std::uintptr_t>(row);
        if (begin < r + 16 && r < end)
          kiln::fail("wgmma reads shared byte {} that cp.async wrote without a fence.proxy.async.shared::cta after it "
                     "(the writing thread must fence before the barrier that orders the read)",
                     r - reinterpret_cast<std::uintptr_t>(dynamic_shared_memory()));
      }
    }
  });
}

// What each thread brings to the collective.
struct ThreadOperands {
  const WarpgroupMma* mma;
  const float* c;  // its accumulator input (registers, or the pending values of a chained mma)
};

struct Result {
  std::vector<float> d;
  std::shared_ptr<const SharedSnapshot> reads;
};

void check_uniform(const WarpgroupMma& first, const WarpgroupMma& other) {
  if (other.n != first.n || (other.a_registers == nullptr) != (first.a_registers == nullptr) ||
      other.a_descriptor != first.a_descriptor || other.a_m_major != first.a_m_major ||
      other.b_descriptor != first.b_descriptor || other.b_n_major != first.b_n_major ||
      other.accumulate != first.accumulate)
    kiln::fail("wgmma.mma_async: the threads of a warpgroup disagree on the shape, descriptors or immediates");
}

void combine_wgmma(LaneSlot* threads, const char*) {
  const WarpgroupMma& first = *static_cast<const ThreadOperands*>(threads[0].in)->mma;
  for (int t = 1; t < kWarpgroupThreads; ++t) check_uniform(first, *static_cast<const ThreadOperands*>(threads[t].in)->mma);
  const int n = first.n;
  auto snapshot = std::make_shared<SharedSnapshot>();
  std::vector<std::array<float, kK>> a, b;  // a[m][k], b[n][k]
  if (first.a_registers != nullptr) {
    a.assign(kM, {});
    for (int t = 0; t < kWarpgroupThreads; ++t) {
      const unsigned* regs = static_cast<const ThreadOperands*>(threads[t].in)->mma->a_registers;
      for (int i = 0; i < 8; ++i) {
        const auto at = mma_layout::a_position(t % warpSize, i);
        a[static_cast<std::size_t>(16 * (t / warpSize) + at.row)][static_cast<std::size_t>(at.col)] =
            bf16_half(regs[i / 2], i);
      }
    }
  } else {
    read_operand(a, kM, first.a_descriptor, first.a_m_major, *snapshot, "A");
  }
  read_operand(b, n, first.b_descriptor, first.b_n_major, *snapshot, "B");
  check_async_proxy_order(*snapshot);
  for (int t = 0; t < kWarpgroupThreads; ++t) {
    const auto& in = *static_cast<const ThreadOperands*>(threads[t].in);
    auto& out = *static_cast<Result*>(threads[t].out);
    out.d.resize(static_cast<std::size_t>(n / 2));
    for (int i = 0; i < n / 2; ++i) {
      const auto at = mma_layout::c_position(t % warpSize, i % 4);
      const int row = 16 * (t / warpSize) + at.row, column = 8 * (i / 4) + at.col;
      float sum = first.accumulate ? in.c[i] : 0.0f;
      for (int k = 0; k < kK; ++k) sum += a[static_cast<std::size_t>(row)][static_cast<std::size_t>(k)] *
                                          b[static_cast<std::size_t>(column)][static_cast<std::size_t>(k)];
      out.d[static_cast<std::size_t>(i)] = sum;
    }
  }
  for (int t = 0; t < kWarpgroupThreads; ++t) static_cast<Result*>(threads[t].out)->reads = snapshot;
}

// The values an accumulator will hold once its pending mmas complete, or null when none is
// pending (the registers hold them).
const std::vector<float>* pending_values(const WarpgroupMmaState& state, const float* accumulator) {
  for (auto entry = state.pending.rbegin(); entry != state.pending.rend(); ++entry)
    if (entry->accumulator == accumulator) return &entry->values;
  return nullptr;
}

void check_unchanged(const SharedSnapshot& snapshot) {
  for (const auto& [row, bytes] : snapshot.rows)
    if (std::memcmp(row, bytes.data(), 16) != 0)
      kiln::fail("shared bytes {}..{} that an in-flight wgmma reads changed before its wgmma.wait_group",
                 row - dynamic_shared_memory(), row - dynamic_shared_memory() + 16);
}

}  // namespace

MatrixDescriptor decode_matrix_descriptor(std::uint64_t bits) {
  MatrixDescriptor d;
  d.start = static_cast<std::uint32_t>(bits & 0x3FFF) << 4;
  d.leading_bytes = static_cast<std::uint32_t>((bits >> 16) & 0x3FFF) << 4;
  d.stride_bytes = static_cast<std::uint32_t>((bits >> 32) & 0x3FFF) << 4;
  d.swizzle = static_cast<int>(bits >> 62);
  return d;
}

std::uint64_t encode_matrix_descriptor(std::uint32_t start, std::uint32_t leading_bytes, std::uint32_t stride_bytes) {
  const auto field = [](std::uint32_t x) { return static_cast<std::uint64_t>((x & kFieldMask) >> 4); };
  return field(start) | field(leading_bytes) << 16 | field(stride_bytes) << 32;
}

std::uint32_t shared_window_address(const void* p, std::source_location site) {
  const auto* byte = static_cast<const unsigned char*>(p);
  const unsigned char* base = dynamic_shared_memory();
  if (byte < base || byte >= base + dynamic_shared_size())
    fail_in_kernel("a wgmma operand must be in the block's dynamic shared memory", site);
  const auto offset = static_cast<std::uint32_t>(byte - base);
  if (offset % 16 != 0) fail_in_kernel("a wgmma matrix must start at a 16-byte aligned shared address", site);
  return offset;
}

void wgmma_fence() { warpgroup_mma_state().fenced = true; }

void wgmma_mma_async(const WarpgroupMma& mma, std::source_location site) {
  WarpgroupMmaState& state = warpgroup_mma_state();
  if (mma.n < 8 || mma.n > 256 || mma.n % 8 != 0)
    fail_in_kernel("wgmma.mma_async m64nNk16 needs N a multiple of 8 in [8, 256], not " + std::to_string(mma.n), site);
  if (!state.fenced)
    fail_in_kernel("wgmma.mma_async without a wgmma.fence since this thread's registers were last touched (after a "
                   "wgmma.wait_group, or at the start)",
                   site);
  const std::vector<float>* chained = pending_values(state, mma.accumulator);
  const ThreadOperands operands{&mma, chained != nullptr ? chained->data() : mma.accumulator};
  Result result;
  warpgroup_collective("wgmma.mma_async.m64nNk16", combine_wgmma, LaneSlot{&operands, &result, 0, 0}, site);
  state.pending.push_back({mma.accumulator, std::move(result.d), state.open_group, std::move(result.reads)});
  // Until the wait completes the group, the registers hold nothing a thread may read.
  std::fill(mma.accumulator, mma.accumulator + mma.n / 2, std::numeric_limits<float>::quiet_NaN());
}

void wgmma_commit_group() { ++warpgroup_mma_state().open_group; }

void wgmma_wait_group(int newest_pending, std::source_location site) {
  WarpgroupMmaState& state = warpgroup_mma_state();
  if (newest_pending < 0 || newest_pending > 7) fail_in_kernel("wgmma.wait_group takes N in [0, 7]", site);
  const int complete_below = state.open_group - newest_pending;
  std::vector<PendingMma> still_pending;
  for (PendingMma& entry : state.pending) {
    if (entry.group >= complete_below) {
      still_pending.push_back(std::move(entry));
      continue;
    }
    if (!entry.reads->checked) {
      entry.reads->checked = true;
      try {
        check_unchanged(*entry.reads);
      } catch (const kiln::Error& error) {
        fail_in_kernel(error.what(), site);
      }
    }
    std::copy(entry.values.begin(), entry.values.end(), entry.accumulator);
  }
  state.pending = std::move(still_pending);
  state.fenced = false;  // the thread now reads the accumulators: fence again before the next mma
}

void fence_proxy_async_shared() { warpgroup_mma_state().unfenced_copies.clear(); }

void note_generic_shared_write(const void* dst, int bytes) {
  const auto begin = reinterpret_cast<std::uintptr_t>(dst);
  warpgroup_mma_state().unfenced_copies.emplace_back(begin, begin + static_cast<std::uintptr_t>(bytes));
}

}  // namespace kiln::emu
