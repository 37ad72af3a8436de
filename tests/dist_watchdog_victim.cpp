// Run by dist_watchdog_check.sh under mpirun -np 2: rank 1 fails in the way the first argument
// names ("hang": sleeps far past the timeout; "die": SIGKILLs itself) just before an allreduce that
// rank 0 enters with a watchdog of --comm-timeout seconds (the second argument). The job must end
// non-zero, with a message naming a rank, instead of hanging.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "dist/communicator.h"
#include "dist/mpi_runtime.h"
#include "dist/watchdog.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: dist_watchdog_victim hang|die TIMEOUT_S\n");
    return 2;
  }
  rw::mpi_init(&argc, &argv);
  rw::Watchdog watchdog(std::atof(argv[2]));
  std::unique_ptr<rw::Communicator> world = rw::make_mpi_world();
  float x = 1.0f;
  world->allreduce(&x, 1);  // both ranks are up
  if (world->rank() == 1) {
    if (std::strcmp(argv[1], "die") == 0) raise(SIGKILL);
    sleep(120);
  }
  world->allreduce(&x, 1);
  std::printf("rank %d: the allreduce completed, the watchdog did not fire\n", world->rank());
  return 0;
}
