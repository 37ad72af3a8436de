// Turns a hang into an error. A rank that waits in a collective for a peer that died or hangs would
// otherwise wait forever; every blocking communicator call is bracketed by a WatchedCall, and while
// a Watchdog is alive a background thread aborts the whole job (MPI_Abort) once one call has been
// blocked longer than the timeout, naming this rank, its host, the call and the timeout.
#pragma once
#include <atomic>
#include <thread>

namespace rw {

// Marks the process as blocked in `call` (a string literal, e.g. "MPI_Allreduce") for its
// lifetime. Two atomic stores, whether or not a Watchdog runs. There is one slot per process: when
// several threads communicate, the call entered last is the one watched.
class WatchedCall {
 public:
  explicit WatchedCall(const char* call);
  ~WatchedCall();
  WatchedCall(const WatchedCall&) = delete;
  WatchedCall& operator=(const WatchedCall&) = delete;
};

// One per process (the run's --comm-timeout); timeout_s <= 0 watches nothing.
class Watchdog {
 public:
  explicit Watchdog(double timeout_s);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void watch();

  double timeout_s_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace rw
