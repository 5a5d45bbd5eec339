#include "trainer/core/stop_signal.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "trainer/core/error.hpp"

namespace kiln {

namespace {

// Lock-free atomics are the only shared state a signal handler may touch safely.
std::atomic<int> g_stop_signal{0};
std::atomic<bool> g_announce{true};
std::atomic<bool> g_installed{false};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);

struct sigaction g_previous_interrupt;
struct sigaction g_previous_terminate;

constexpr char kAnnouncement[] =
    "\nkiln: stop requested; finishing this step and saving a checkpoint "
    "(signal again to exit at once)\n";

void restore_default_action(int signal_number) {
  struct sigaction action{};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(signal_number, &action, nullptr);  // async-signal-safe
}

extern "C" void on_stop_signal(int signal_number) {
  g_stop_signal.store(signal_number, std::memory_order_relaxed);
  restore_default_action(SIGINT);
  restore_default_action(SIGTERM);
  if (g_announce.load(std::memory_order_relaxed)) {
    // write(2) is async-signal-safe; a short or failed write only loses the message.
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, kAnnouncement, sizeof kAnnouncement - 1);
  }
}

void install(int signal_number, struct sigaction* previous) {
  struct sigaction action{};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // blocking I/O in the loop resumes instead of failing with EINTR
  if (sigaction(signal_number, &action, previous) != 0) {
    fail("cannot install a handler for signal {}: {}", signal_number, std::strerror(errno));
  }
}

}  // namespace

StopSignalHandler::StopSignalHandler(bool announce) {
  if (g_installed.exchange(true)) fail("a StopSignalHandler is already installed");
  g_announce.store(announce);
  g_stop_signal.store(0);
  install(SIGINT, &g_previous_interrupt);
  install(SIGTERM, &g_previous_terminate);
}

StopSignalHandler::~StopSignalHandler() {
  sigaction(SIGINT, &g_previous_interrupt, nullptr);
  sigaction(SIGTERM, &g_previous_terminate, nullptr);
  g_installed.store(false);
}

bool stop_requested() { return g_stop_signal.load(std::memory_order_relaxed) != 0; }
int stop_signal_number() { return g_stop_signal.load(std::memory_order_relaxed); }
void clear_stop_request() { g_stop_signal.store(0); }

}  // namespace kiln
