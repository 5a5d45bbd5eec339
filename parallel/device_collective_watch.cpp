#include "parallel/device_collective_watch.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <list>

#include "parallel/mpi_environment.hpp"
#include "parallel/watchdog.hpp"

namespace kiln::parallel {

DeviceCollectiveWatch::DeviceCollectiveWatch(double timeout_s, OnTimeout on_timeout, std::chrono::milliseconds poll)
    : timeout_s_(timeout_s), on_timeout_(std::move(on_timeout)), poll_(poll), thread_([this] { run(); }) {}

DeviceCollectiveWatch::~DeviceCollectiveWatch() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void DeviceCollectiveWatch::watch(std::shared_ptr<cuda_backend::DeviceFence> fence, const char* op,
                                  const std::string& group) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.push_back({std::move(fence), op, group, std::chrono::steady_clock::now()});
}

std::size_t DeviceCollectiveWatch::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

double DeviceCollectiveWatch::oldest_unfinished_age(const Entry** oldest) {
  const auto now = std::chrono::steady_clock::now();
  double age = -1.0;
  for (auto entry = entries_.begin(); entry != entries_.end();) {
    if (entry->fence->reached()) {
      entry = entries_.erase(entry);
      continue;
    }
    const double waited = std::chrono::duration<double>(now - entry->since).count();
    if (waited > age) age = waited, *oldest = &*entry;
    ++entry;
  }
  return age;
}

void DeviceCollectiveWatch::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, poll_, [this] { return stopping_; });
    if (stopping_ || fired_) continue;
    const Entry* oldest = nullptr;
    double age = -1.0;
    try {
      age = oldest_unfinished_age(&oldest);
    } catch (const std::exception&) {
      continue;  // a failed query is the main thread's to report, at its next CUDA call
    }
    if (oldest == nullptr || age <= timeout_s_) continue;
    fired_ = true;
    const std::string what = fmt::format("{} on the {} group", oldest->op, oldest->group);
    lock.unlock();
    on_timeout_(what, age);
    lock.lock();
  }
}

// ---- the process's watch ----------------------------------------------------------------------

namespace {

std::mutex aborts_mutex;
std::list<std::function<void()>> aborts;

// Ends the job from the watch's thread: std::_Exit, since MPI (initialised FUNNELED) may only
// be called from the main thread; mpirun then ends every other rank.
[[noreturn]] void end_job(const std::string& what, double waited) {
  std::fprintf(stderr,
               "kiln: watchdog: rank %d: %s has not finished on the GPU after %.1f s (parallel.timeout_s = %g): a "
               "peer died or hangs. Aborting the NCCL communicators and ending the job; the last committed "
               "checkpoint is intact.\n",
               MpiEnvironment::instance().rank(), what.c_str(), waited, collective_timeout_s());
  std::fflush(stderr);
  {
    std::lock_guard<std::mutex> lock(aborts_mutex);
    for (auto& abort : aborts) abort();
  }
  std::_Exit(3);
}

}  // namespace

DeviceCollectiveWatch& device_collective_watch() {
  static DeviceCollectiveWatch watch(collective_timeout_s(), [](const std::string& what, double waited) {
    end_job(what, waited);
  });
  return watch;
}

std::shared_ptr<void> on_device_timeout(std::function<void()> abort) {
  std::lock_guard<std::mutex> lock(aborts_mutex);
  const auto at = aborts.insert(aborts.end(), std::move(abort));
  return std::shared_ptr<void>(nullptr, [at](void*) {
    std::lock_guard<std::mutex> unregistering(aborts_mutex);
    aborts.erase(at);
  });
}

}  // namespace kiln::parallel
