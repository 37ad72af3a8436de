#include "dist/watchdog.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "dist/mpi_runtime.h"

namespace rw {
namespace {

using Clock = std::chrono::steady_clock;

// The call this process is blocked in (nullptr when none) and since when. Written by the
// communicating thread, read by the watchdog thread.
std::atomic<const char*> g_call{nullptr};
std::atomic<Clock::rep> g_since{0};

}  // namespace

WatchedCall::WatchedCall(const char* call) {
  g_since.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  g_call.store(call, std::memory_order_release);
}

WatchedCall::~WatchedCall() { g_call.store(nullptr, std::memory_order_release); }

Watchdog::Watchdog(double timeout_s) : timeout_s_(timeout_s) {
  if (timeout_s_ > 0) thread_ = std::thread(&Watchdog::watch, this);
}

Watchdog::~Watchdog() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Watchdog::watch() {
  // Polling a tenth of the timeout (at most a second) keeps the overshoot small and the cost nil.
  const auto poll = std::chrono::duration<double>(std::min(1.0, timeout_s_ / 10));
  const auto timeout = std::chrono::duration<double>(timeout_s_);
  while (!stop_) {
    std::this_thread::sleep_for(poll);
    const char* call = g_call.load(std::memory_order_acquire);
    if (!call) continue;
    const auto since = Clock::time_point(Clock::duration(g_since.load(std::memory_order_relaxed)));
    if (Clock::now() - since < timeout || g_call.load(std::memory_order_acquire) != call) continue;
    std::fprintf(stderr,
                 "ringwise: rank %d on %s: stuck in %s for more than %g s (--comm-timeout): a peer rank died or "
                 "hangs; aborting the job\n",
                 world_rank(), host_name().c_str(), call, timeout_s_);
    std::fflush(stderr);
    if (mpi_initialized()) MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);
  }
}

}  // namespace rw
