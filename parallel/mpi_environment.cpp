#include "parallel/mpi_environment.hpp"

#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <thread>

#include "trainer/core/error.hpp"

#ifdef KILN_WITH_MPI
#include <mpi.h>
#endif

namespace kiln::parallel {

bool launched_under_mpi() {
  for (const char* variable : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"}) {
    if (std::getenv(variable) != nullptr) return true;
  }
  return false;
}

int default_threads_per_rank(int local_ranks) {
  const int machine = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  int allowed = machine;
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof(mask), &mask) == 0) allowed = std::max(1, CPU_COUNT(&mask));
  // A launcher that pinned this rank to some cores already gave it its share.
  if (allowed < machine) return allowed;
  return std::max(1, allowed / std::max(1, local_ranks));
}

void use_threads(int requested) {
  if (requested > 0) {
    omp_set_num_threads(requested);
    return;
  }
  if (std::getenv("OMP_NUM_THREADS") != nullptr) return;
  const int ranks_here = MpiEnvironment::instance().local_size();
  if (ranks_here > 1) omp_set_num_threads(default_threads_per_rank(ranks_here));
}

MpiEnvironment& MpiEnvironment::instance() {
  static MpiEnvironment environment;
  return environment;
}

#ifdef KILN_WITH_MPI

namespace {
void check_mpi(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char message[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, message, &length);
  fail("MPI {} failed: {}", what, std::string(message, static_cast<std::size_t>(length)));
}
}  // namespace

MpiEnvironment::MpiEnvironment() {
  if (!launched_under_mpi()) return;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) {
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "init");
    initialised_here_ = true;
  }
  // Errors come back as codes so they become kiln::Error messages instead of silent aborts.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
  MPI_Comm node;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
            "split by node");
  MPI_Comm_size(node, &local_size_);
  MPI_Comm_free(&node);
}

MpiEnvironment::~MpiEnvironment() {
  for (auto hook = finalize_hooks_.rbegin(); hook != finalize_hooks_.rend(); ++hook) (*hook)();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (initialised_here_ && !finalized) MPI_Finalize();
}

void MpiEnvironment::barrier() const {
  if (distributed()) check_mpi(MPI_Barrier(MPI_COMM_WORLD), "barrier");
}

void MpiEnvironment::send_bytes(std::string_view bytes, int destination, int tag) const {
  const unsigned long long size = bytes.size();
  check_mpi(MPI_Send(&size, 1, MPI_UNSIGNED_LONG_LONG, destination, tag, MPI_COMM_WORLD), "send");
  // Large messages go in pieces that fit MPI's int count.
  constexpr std::size_t kPiece = std::numeric_limits<int>::max() / 2;
  for (std::size_t offset = 0; offset < bytes.size(); offset += kPiece) {
    const auto count = static_cast<int>(std::min(kPiece, bytes.size() - offset));
    check_mpi(MPI_Send(bytes.data() + offset, count, MPI_BYTE, destination, tag, MPI_COMM_WORLD),
              "send");
  }
}

std::string MpiEnvironment::receive_bytes(int source, int tag) const {
  unsigned long long size = 0;
  check_mpi(MPI_Recv(&size, 1, MPI_UNSIGNED_LONG_LONG, source, tag, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE),
            "receive");
  std::string bytes(size, '\0');
  constexpr std::size_t kPiece = std::numeric_limits<int>::max() / 2;
  for (std::size_t offset = 0; offset < bytes.size(); offset += kPiece) {
    const auto count = static_cast<int>(std::min(kPiece, bytes.size() - offset));
    check_mpi(MPI_Recv(bytes.data() + offset, count, MPI_BYTE, source, tag, MPI_COMM_WORLD,
                       MPI_STATUS_IGNORE),
              "receive");
  }
  return bytes;
}

void MpiEnvironment::abort(int exit_code) const {
  if (distributed()) MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::exit(exit_code);
}

#else  // built without MPI: always one process

MpiEnvironment::MpiEnvironment() {
  if (launched_under_mpi()) {
    fail("this kiln was built without MPI (KILN_MPI=OFF) but was started by an MPI launcher");
  }
}
MpiEnvironment::~MpiEnvironment() = default;
void MpiEnvironment::barrier() const {}
void MpiEnvironment::send_bytes(std::string_view, int, int) const {
  fail("send_bytes needs MPI, and this kiln was built with KILN_MPI=OFF");
}
std::string MpiEnvironment::receive_bytes(int, int) const {
  fail("receive_bytes needs MPI, and this kiln was built with KILN_MPI=OFF");
}
void MpiEnvironment::abort(int exit_code) const { std::exit(exit_code); }

#endif

}  // namespace kiln::parallel
