#include "parallel/watchdog.hpp"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "parallel/mpi_environment.hpp"
#include "trainer/core/error.hpp"

namespace kiln::parallel {

namespace {

std::atomic<double> timeout_s{kDefaultCollectiveTimeoutS};
std::atomic<std::int64_t> current_step{-1};

}  // namespace

double collective_timeout_s() { return timeout_s.load(); }
void set_watchdog_step(std::int64_t step) { current_step.store(step); }

#ifdef KILN_WITH_MPI

namespace {

std::int64_t now_ms() {
  // CLOCK_MONOTONIC: one clock for every process of the machine.
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One rank's entry on its machine's board, in memory shared by the machine's ranks.
struct BoardSlot {
  std::int64_t world_rank;
  std::int64_t heartbeat_ms;  // written every kBeat by the rank's heartbeat thread
};
constexpr auto kBeat = std::chrono::milliseconds(100);
// A rank whose heartbeat is older than this is stopped or dead (its thread ticks 10x a second
// even while the rank computes or waits).
constexpr std::int64_t kSilentMs = 2000;

class LivenessBoard {
 public:
  LivenessBoard() {
    const int world_rank = MpiEnvironment::instance().rank();
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node_);
    MPI_Comm_rank(node_, &local_rank_);
    MPI_Comm_size(node_, &local_size_);
    void* base = nullptr;
    const MPI_Aint bytes = local_rank_ == 0 ? static_cast<MPI_Aint>(local_size_ * sizeof(BoardSlot)) : 0;
    MPI_Win_allocate_shared(bytes, sizeof(BoardSlot), MPI_INFO_NULL, node_, &base, &window_);
    MPI_Aint size = 0;
    int unit = 0;
    MPI_Win_shared_query(window_, 0, &size, &unit, &slots_);
    std::atomic_ref<std::int64_t>(slot(local_rank_).world_rank).store(world_rank);
    beat();
    MPI_Barrier(node_);  // every slot filled before anyone reads the board
    heart_ = std::thread([this] {
      while (!stopping_.load()) {
        beat();
        std::this_thread::sleep_for(kBeat);
      }
    });
  }
  ~LivenessBoard() {
    stopping_.store(true);
    if (heart_.joinable()) heart_.join();
    MPI_Win_free(&window_);
    MPI_Comm_free(&node_);
  }

  // Whether this rank itself was stopped (its own heartbeat went stale): then its deadline
  // passed while it could not run, and the rank that holds the job up is this one.
  bool self_was_stopped() const {
    return now_ms() - std::atomic_ref<std::int64_t>(slot(local_rank_).heartbeat_ms).load() >= kSilentMs;
  }

  // "rank 3 shows no sign of life for 5.1 s" for each silent rank of this machine but this one.
  std::string silent_ranks() const {
    std::string text;
    const std::int64_t now = now_ms();
    for (int local = 0; local < local_size_; ++local) {
      const std::int64_t last = std::atomic_ref<std::int64_t>(slot(local).heartbeat_ms).load();
      if (local == local_rank_ || now - last < kSilentMs) continue;
      text += fmt::format("{}rank {} shows no sign of life for {:.1f} s (stopped or dead)", text.empty() ? "" : "; ",
                          std::atomic_ref<std::int64_t>(slot(local).world_rank).load(),
                          static_cast<double>(now - last) / 1000.0);
    }
    return text;
  }

 private:
  BoardSlot& slot(int local) const { return static_cast<BoardSlot*>(slots_)[local]; }
  void beat() { std::atomic_ref<std::int64_t>(slot(local_rank_).heartbeat_ms).store(now_ms()); }

  MPI_Comm node_ = MPI_COMM_NULL;
  MPI_Win window_ = MPI_WIN_NULL;
  void* slots_ = nullptr;
  int local_rank_ = 0, local_size_ = 1;
  std::atomic<bool> stopping_{false};
  std::thread heart_;
};

LivenessBoard* board = nullptr;

[[noreturn]] void report_and_end_job(const char* op, const std::string& group, double waited) {
  if (board && board->self_was_stopped()) {
    std::fprintf(stderr, "kiln: watchdog: rank %d was itself stopped past its deadline in %s on the %s group\n",
                 MpiEnvironment::instance().rank(), op, group.c_str());
    MpiEnvironment::instance().abort(3);
  }
  const std::string silent = board ? board->silent_ranks() : std::string();
  const std::int64_t step = current_step.load();
  std::fprintf(stderr,
               "kiln: watchdog: rank %d waited %.1f s (parallel.timeout_s = %g) in %s on the %s group%s: %s. "
               "Ending the job; the last committed checkpoint is intact.\n",
               MpiEnvironment::instance().rank(), waited, timeout_s.load(), op, group.c_str(),
               step >= 0 ? fmt::format(" at step {}", step).c_str() : "",
               !silent.empty() ? silent.c_str()
               : board         ? "every rank of this machine is alive, so a rank elsewhere (or one that never reached "
                                 "this collective) holds it up"
                               : "no liveness board (the watchdog was not started), so the stalled rank is unknown");
  std::fflush(stderr);
  MpiEnvironment::instance().abort(3);
}

}  // namespace

// This rank on its machine's liveness board (collective over the job; once).
static void join_liveness_board() {
  auto& environment = MpiEnvironment::instance();
  if (board || !environment.distributed()) return;
  board = new LivenessBoard();
  environment.at_finalize([] {
    delete board;
    board = nullptr;
  });
}

void wait_with_deadline(int count, MPI_Request* requests, MPI_Status* statuses, const char* op,
                        const std::string& group) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(timeout_s.load());
  for (long polls = 0;; ++polls) {
    int done = 0;
    const int code = MPI_Testall(count, requests, &done, statuses);
    if (code != MPI_SUCCESS) {
      char message[MPI_MAX_ERROR_STRING];
      int length = 0;
      MPI_Error_string(code, message, &length);
      fail("MPI {} on the {} group failed: {}", op, group, std::string(message, static_cast<std::size_t>(length)));
    }
    if (done) return;
    // Spin first (a collective in step usually completes within microseconds), then yield the
    // core, which ranks oversubscribing a machine share.
    if (polls < 256) continue;
    const auto now = std::chrono::steady_clock::now();
    if (now > deadline) report_and_end_job(op, group, std::chrono::duration<double>(now - start).count());
    if (polls < 4096) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

#endif

void start_collective_watchdog(double seconds) {
  if (!(seconds > 0)) fail("parallel.timeout_s: {} is not a positive number of seconds", seconds);
  timeout_s.store(seconds);
#ifdef KILN_WITH_MPI
  join_liveness_board();
#endif
}

}  // namespace kiln::parallel
