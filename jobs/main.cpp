// Entry point of the `ringwise` binary. Every error the user can fix ends here as one line on
// stderr and exit code 2, so scripts can tell bad input (2) from a failed run (1). Under mpirun the
// line names the rank, and the whole job ends with that code.
#include <cstdio>
#include <exception>

#include "core/blas_kernel.h"
#include "core/check.h"
#include "dist/mpi_runtime.h"
#include "jobs/cli.h"

int main(int argc, char** argv) {
  rw::use_native_blas_kernels(argv);
  try {
    return rw::run_cli(argc, argv);
  } catch (const rw::UserError& e) {
    std::fprintf(stderr, "ringwise: error: %s%s\n", rw::rank_prefix().c_str(), e.what());
    rw::abort_job_if_distributed(2);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ringwise: failed: %s%s\n", rw::rank_prefix().c_str(), e.what());
    rw::abort_job_if_distributed(1);
    return 1;
  }
}
