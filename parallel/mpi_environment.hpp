#pragma once
// The process's place among MPI ranks. MPI is initialised only when the process was started
// by a launcher (mpirun/srun set the variables checked in launched_under_mpi()), so a plain
// `kiln ...` stays a single process with rank 0 of 1 and needs no MPI runtime at all.
// The full Communicator interface of DESIGN.md §6 builds on this in the parallel issue.
#include <string>
#include <string_view>

namespace kiln::parallel {

class MpiEnvironment {
 public:
  // Process-wide instance; MPI_Init_thread on first use when launched under MPI.
  static MpiEnvironment& instance();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  bool is_root() const { return rank_ == 0; }
  bool distributed() const { return world_size_ > 1; }

  void barrier() const;
  // Point-to-point byte messages (blocking). `tag` keeps concurrent streams apart.
  void send_bytes(std::string_view bytes, int destination, int tag) const;
  std::string receive_bytes(int source, int tag) const;
  // Ends every rank of the job: used when one rank hits an error the others would wait on.
  [[noreturn]] void abort(int exit_code) const;

  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

 private:
  MpiEnvironment();
  int rank_ = 0;
  int world_size_ = 1;
  bool initialised_here_ = false;
};

// True when a launcher (Open MPI, MPICH/PMI, PMIx, SLURM) started this process.
bool launched_under_mpi();

}  // namespace kiln::parallel
