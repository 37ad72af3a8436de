#include "dist/mpi_runtime.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace rw {

static void finalize_at_exit() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void mpi_init(int* argc, char*** argv) {
  if (mpi_initialized()) return;
  int provided = 0;
  RW_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
  RW_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  std::atexit(finalize_at_exit);
}

bool launched_by_mpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK");
}

bool mpi_initialized() {
  int flag = 0;
  MPI_Initialized(&flag);
  return flag != 0;
}

int world_rank() {
  int r = 0;
  if (mpi_initialized()) RW_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &r));
  return r;
}

int world_size() {
  int n = 1;
  if (mpi_initialized()) RW_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &n));
  return n;
}

std::string host_name() {
  char buf[256] = {0};
  gethostname(buf, sizeof(buf) - 1);
  return buf;
}

std::string rank_prefix() {
  return world_size() > 1 ? "rank " + std::to_string(world_rank()) + " on " + host_name() + ": " : "";
}

void abort_job_if_distributed(int exit_code) {
  if (world_size() <= 1) return;
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, exit_code);
}

void mpi_fail(const char* call, int err, const char* file, int line) {
  char msg[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(err, msg, &len);
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fprintf(stderr, "ringwise: rank %d on %s: %s failed at %s:%d: %s\n", rank, host_name().c_str(), call, file,
               line, msg);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::abort();
}

}  // namespace rw
