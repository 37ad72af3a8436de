#include "jobs/stop_signal.h"

#include <signal.h>

#include "core/check.h"

namespace rw {
namespace {

volatile sig_atomic_t g_stop_request = static_cast<sig_atomic_t>(StopRequest::kNone);

// Async-signal-safe: stores a number and nothing else. SIGUSR1 wins over an earlier SIGTERM.
void remember_signal(int signo) {
  const StopRequest request = signo == SIGUSR1 ? StopRequest::kStopAndRequeue : StopRequest::kStop;
  if (static_cast<int>(request) > g_stop_request) g_stop_request = static_cast<sig_atomic_t>(request);
}

}  // namespace

void install_stop_signal_handlers() {
  struct sigaction action = {};
  action.sa_handler = remember_signal;
  sigemptyset(&action.sa_mask);
  // Restart interrupted system calls, so that a write or an MPI wait in progress is not cut short.
  action.sa_flags = SA_RESTART;
  for (int signo : {SIGUSR1, SIGTERM}) RW_CHECK(sigaction(signo, &action, nullptr) == 0, "sigaction(%d) failed", signo);
}

StopRequest stop_requested_on_any_rank(Communicator& world) {
  float request = static_cast<float>(g_stop_request);
  world.allreduce(&request, 1, ReduceOp::Max);
  return static_cast<StopRequest>(static_cast<int>(request));
}

}  // namespace rw
