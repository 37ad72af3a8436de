#include "jobs/inference_ranks.h"

#include "core/check.h"
#include "dist/mpi_runtime.h"

namespace rw {
namespace {

std::unique_ptr<Communicator> cp_group(int cp, const char* command) {
  RW_USER_CHECK(cp >= 1, "--cp must be at least 1, got %d", cp);
  if (launched_by_mpirun()) mpi_init(nullptr, nullptr);
  RW_USER_CHECK(world_size() == cp,
                "%s spreads one sequence over the --cp ranks only: --cp %d but mpirun started %d ranks (run: "
                "mpirun -np %d ringwise %s --cp %d ...)",
                command, cp, world_size(), cp, command, cp);
  return cp > 1 ? make_mpi_world() : make_single();
}

}  // namespace

InferenceRanks::InferenceRanks(int cp, const char* command) : comm_(cp_group(cp, command)), ring_(*comm_) {}

}  // namespace rw
