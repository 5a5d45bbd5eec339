#pragma once
// The collective watchdog (parallel.timeout_s): every MPI collective and message of kiln's
// communicators waits with a deadline instead of forever. A rank whose wait passes it prints
// which collective on which group it waited in, at which step, and which ranks of its machine
// show no sign of life (a heartbeat thread of each rank ticks in node-shared memory, so a
// stopped or dead process is told apart from a slow one), then ends the whole job (MPI_Abort:
// the launcher kills every rank, so the job exits non-zero within the deadline plus the
// launcher's teardown). Checkpoints are committed atomically, so the last one stays valid.
#include <cstdint>
#include <string>

#ifdef KILN_WITH_MPI
#include <mpi.h>
#endif

namespace kiln::parallel {

inline constexpr double kDefaultCollectiveTimeoutS = 600.0;

// Sets the deadline of every later collective wait on this rank and joins this rank to its
// machine's liveness board. Collective over the job: every rank calls it once, at the same
// point (the trainer, at start). Without it the deadline is kDefaultCollectiveTimeoutS and a
// timeout cannot say which rank stalled.
void start_collective_watchdog(double timeout_s);
double collective_timeout_s();
// The training step a timeout names (-1: not training).
void set_watchdog_step(std::int64_t step);

#ifdef KILN_WITH_MPI
// Completes `requests` (MPI requests of one operation), polling; past the deadline reports and
// ends the job. `statuses` may be MPI_STATUSES_IGNORE.
void wait_with_deadline(int count, MPI_Request* requests, MPI_Status* statuses, const char* op,
                        const std::string& group);
#endif

}  // namespace kiln::parallel
