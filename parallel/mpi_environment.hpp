#pragma once
// The process's place among MPI ranks. MPI is initialised only when the process was started
// by a launcher (mpirun/srun set the variables checked in launched_under_mpi()), so a plain
// `kiln ...` stays a single process with rank 0 of 1 and needs no MPI runtime at all.
// The full Communicator interface of DESIGN.md §6 builds on this in the parallel issue.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::parallel {

class MpiEnvironment {
 public:
  // Process-wide instance; MPI_Init_thread on first use when launched under MPI.
  static MpiEnvironment& instance();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  // Ranks on this machine (sharing its memory and cores), this one included.
  int local_size() const { return local_size_; }
  bool is_root() const { return rank_ == 0; }
  bool distributed() const { return world_size_ > 1; }

  void barrier() const;
  // Point-to-point byte messages (blocking). `tag` keeps concurrent streams apart.
  void send_bytes(std::string_view bytes, int destination, int tag) const;
  std::string receive_bytes(int source, int tag) const;
  // Ends every rank of the job: used when one rank hits an error the others would wait on.
  [[noreturn]] void abort(int exit_code) const;
  // Runs `hook` at shutdown, before MPI_Finalize (MPI objects a module keeps for the process).
  void at_finalize(std::function<void()> hook) { finalize_hooks_.push_back(std::move(hook)); }

  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

 private:
  MpiEnvironment();
  int rank_ = 0;
  int world_size_ = 1;
  int local_size_ = 1;
  bool initialised_here_ = false;
  std::vector<std::function<void()>> finalize_hooks_;
};

// True when a launcher (Open MPI, MPICH/PMI, PMIx, SLURM) started this process.
bool launched_under_mpi();

// OpenMP threads for each rank when the user chose none: the cores this process may run on,
// shared by the ranks on this machine when they are not pinned. Ranks that each spawned a
// thread per core would oversubscribe the machine local_size times over, and spinning OpenMP
// threads then crawl (8 ranks x 2 threads on 2 cores ran the quickstart at 447 tokens/s
// instead of 18k). At least 1.
int default_threads_per_rank(int local_ranks);

// Sets this process's OpenMP thread count: `requested` when > 0, else OMP_NUM_THREADS when
// set, else default_threads_per_rank (a single process keeps OpenMP's default: every core).
// Every verb with a --threads / *.threads option calls it (train, prepare, curate).
void use_threads(int requested);

}  // namespace kiln::parallel
