#pragma once
// Clean stop on SIGINT (Ctrl-C) and SIGTERM (sent by schedulers before a kill): the first
// signal only sets a flag, which the training loop polls between steps to save a checkpoint
// and exit; the handler also restores the default action, so a second signal ends the process
// at once for a user who does not want to wait.
//
//   StopSignalHandler stop;                       // installed for this scope
//   while (...) { step(); if (stop_requested()) { save(); break; } }
namespace kiln {

class StopSignalHandler {
 public:
  // Installs the handlers (clearing any earlier request). announce: the handler writes one line
  // to stderr saying what happens next. Only one may exist at a time.
  explicit StopSignalHandler(bool announce = true);
  // Restores the handlers that were in place before.
  ~StopSignalHandler();
  StopSignalHandler(const StopSignalHandler&) = delete;
  StopSignalHandler& operator=(const StopSignalHandler&) = delete;
};

// True once SIGINT or SIGTERM arrived while a StopSignalHandler was installed.
bool stop_requested();
// The signal that asked to stop (SIGINT, SIGTERM), or 0.
int stop_signal_number();
// Forgets a request (tests; a loop that handled one and continues).
void clear_stop_request();

}  // namespace kiln
