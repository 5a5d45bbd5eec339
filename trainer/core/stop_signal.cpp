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
std::atomic<int> g_deferral_depth{0};
std::atomic<int> g_held_signal{0};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);

struct sigaction g_previous_interrupt;
struct sigaction g_previous_terminate;

constexpr char kAnnouncement[] =
    "\nkiln: stop requested; finishing this step and saving a checkpoint "
    "(signal again to exit at once)\n";
constexpr char kHeldAnnouncement[] =
    "\nkiln: a checkpoint is being written; exiting as soon as it is complete\n";

// write(2) is async-signal-safe; a short or failed write only loses the message.
void announce(const char* text, std::size_t length) {
  if (g_announce.load(std::memory_order_relaxed)) {
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, text, length);
  }
}

void restore_default_action(int signal_number) {
  struct sigaction action{};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  sigaction(signal_number, &action, nullptr);  // async-signal-safe
}

extern "C" void on_stop_signal(int signal_number) {
  int none = 0;
  if (g_stop_signal.compare_exchange_strong(none, signal_number)) {
    if (g_deferral_depth.load() == 0) {
      restore_default_action(SIGINT);
      restore_default_action(SIGTERM);
    }
    announce(kAnnouncement, sizeof kAnnouncement - 1);
    return;
  }
  // A second signal reaches this handler only inside a StopSignalDeferral.
  if (g_held_signal.exchange(signal_number) == 0) announce(kHeldAnnouncement, sizeof kHeldAnnouncement - 1);
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
  g_held_signal.store(0);
  install(SIGINT, &g_previous_interrupt);
  install(SIGTERM, &g_previous_terminate);
}

StopSignalHandler::~StopSignalHandler() {
  sigaction(SIGINT, &g_previous_interrupt, nullptr);
  sigaction(SIGTERM, &g_previous_terminate, nullptr);
  g_installed.store(false);
}

StopSignalDeferral::StopSignalDeferral() {
  if (g_deferral_depth.fetch_add(1) == 0 && g_installed.load()) {
    // After a first signal the default actions are back; catch the second one again.
    install(SIGINT, nullptr);
    install(SIGTERM, nullptr);
  }
}

StopSignalDeferral::~StopSignalDeferral() {
  if (g_deferral_depth.fetch_sub(1) != 1 || !g_installed.load()) return;
  if (!stop_requested()) return;  // the handler stays as it was: the next signal is a first one
  restore_default_action(SIGINT);
  restore_default_action(SIGTERM);
  if (const int held = g_held_signal.exchange(0)) ::raise(held);  // the default action ends the process
}

bool stop_requested() { return g_stop_signal.load(std::memory_order_relaxed) != 0; }
int stop_signal_number() { return g_stop_signal.load(std::memory_order_relaxed); }
void clear_stop_request() {
  g_stop_signal.store(0);
  g_held_signal.store(0);
}

}  // namespace kiln
