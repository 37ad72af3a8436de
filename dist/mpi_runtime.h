// MPI start-up and the checked-call macro for every MPI call in ringwise. MPI errors return (the
// communicator's handler is MPI_ERRORS_RETURN) so that a failure is reported with the call, the
// rank and the host, and then the job is aborted instead of left hanging.
#pragma once
#include <mpi.h>

#include <string>

namespace rw {

// Initialises MPI once (MPI_THREAD_MULTIPLE, needed later for a communication thread) and is a
// no-op afterwards; finalised at exit. Safe to call in a single-process run without mpirun.
void mpi_init(int* argc, char*** argv);
// Whether mpirun (Open MPI, or a PMI launcher such as srun) started this process; only then does
// ringwise initialise MPI, so that a plain run needs no MPI set-up at all.
bool launched_by_mpirun();
bool mpi_initialized();
int world_rank();
int world_size();
std::string host_name();
// "rank R on HOST: " when MPI runs more than one rank, so that an error says where it happened;
// empty otherwise.
std::string rank_prefix();
// After a rank's fatal error: ends the whole job when more than one rank runs, since the others
// would wait for this one forever in their next collective. Returns when there is no other rank.
void abort_job_if_distributed(int exit_code);

[[noreturn]] void mpi_fail(const char* call, int err, const char* file, int line);

}  // namespace rw

#define RW_MPI_CHECK(call)                                        \
  do {                                                            \
    int rw_mpi_err_ = (call);                                     \
    if (rw_mpi_err_ != MPI_SUCCESS) ::rw::mpi_fail(#call, rw_mpi_err_, __FILE__, __LINE__); \
  } while (0)
