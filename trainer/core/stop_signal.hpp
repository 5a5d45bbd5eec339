#pragma once
// Clean stop on SIGINT (Ctrl-C) and SIGTERM (sent by schedulers before a kill): the first
// signal only sets a flag, which the training loop polls between steps and between evaluation
// batches to save a checkpoint and exit; the handler also restores the default action, so a
// second signal ends the process at once for a user who does not want to wait. Exiting at once
// loses at most the steps since the newest checkpoint, which is complete: checkpoints are
// published by atomic rename.
//
// The one exception: while a StopSignalDeferral exists (a checkpoint of finished steps is
// being written), a second signal is held until it ends, and then ends the process. A
// checkpoint that is being written is therefore always finished, and a run that completed
// all its steps never exits without its final checkpoint.
//
//   StopSignalHandler stop;                       // installed for this scope
//   while (...) {
//     step();
//     if (stop_requested()) { StopSignalDeferral saving; save(); break; }
//   }
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

// Holds a second signal until the end of its scope (see above). May nest; harmless without a
// StopSignalHandler (then nothing is held: the signals keep their previous actions).
class StopSignalDeferral {
 public:
  StopSignalDeferral();
  // Ends the process by the held signal, if one came.
  ~StopSignalDeferral();
  StopSignalDeferral(const StopSignalDeferral&) = delete;
  StopSignalDeferral& operator=(const StopSignalDeferral&) = delete;
};

// True once SIGINT or SIGTERM arrived while a StopSignalHandler was installed.
bool stop_requested();
// The signal that asked to stop (SIGINT, SIGTERM), or 0.
int stop_signal_number();
// Forgets a request (tests; a loop that handled one and continues).
void clear_stop_request();

}  // namespace kiln
