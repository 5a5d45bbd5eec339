#pragma once
// The watchdog for collectives that finish on a GPU (parallel.timeout_s, as watchdog.hpp does
// for host waits). An NCCL collective is queued on a stream and the host goes on: when a peer
// dies or hangs, the collective never finishes and the host blocks later, in some copy or
// synchronisation, where no deadline reaches it. So every NCCL bracket's fence is handed to a
// watch, whose thread asks the device whether it has finished; a fence still unreached past
// the deadline is reported (the collective, its group, the step, how long), every NCCL
// communicator of the process is aborted (ncclCommAbort: the stuck kernels return), and the
// job ends non-zero. Checkpoints are committed atomically, so the last one stays valid.
//
// The emulated device finishes every bracket when it is issued (its transport is MPI, whose
// waits have the host watchdog's deadline), so there the watch only sees reached fences; the
// timeout path is tested with fences that never finish.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "kernels/cuda/collectives.hpp"

namespace kiln::parallel {

class DeviceCollectiveWatch {
 public:
  // What a timeout does: `what` names the collective, group and wait.
  using OnTimeout = std::function<void(const std::string& what, double waited_s)>;

  // Polls every `poll` for fences older than `timeout_s`.
  DeviceCollectiveWatch(double timeout_s, OnTimeout on_timeout,
                        std::chrono::milliseconds poll = std::chrono::milliseconds(20));
  ~DeviceCollectiveWatch();
  DeviceCollectiveWatch(const DeviceCollectiveWatch&) = delete;
  DeviceCollectiveWatch& operator=(const DeviceCollectiveWatch&) = delete;

  // Watches `fence` of collective `op` on `group` from now on.
  void watch(std::shared_ptr<cuda_backend::DeviceFence> fence, const char* op, const std::string& group);
  // Fences not yet seen finished.
  std::size_t pending() const;

 private:
  struct Entry {
    std::shared_ptr<cuda_backend::DeviceFence> fence;
    const char* op;
    std::string group;
    std::chrono::steady_clock::time_point since;
  };
  void run();
  // Drops the finished entries; returns the oldest unfinished one's age, or a negative value.
  double oldest_unfinished_age(const Entry** oldest);

  double timeout_s_;
  OnTimeout on_timeout_;
  std::chrono::milliseconds poll_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Entry> entries_;
  bool stopping_ = false;
  bool fired_ = false;
  std::thread thread_;
};

// The process's watch, with parallel.timeout_s and the job-ending timeout: reports like the host
// watchdog, calls every registered abort (the NCCL communicators), and exits with status 3.
DeviceCollectiveWatch& device_collective_watch();
// `abort` runs when a device collective times out (before the process ends); returns a handle
// that unregisters it when destroyed.
std::shared_ptr<void> on_device_timeout(std::function<void()> abort);

}  // namespace kiln::parallel
