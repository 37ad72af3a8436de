// Prepares the next step's batches on a background thread while the current step computes. The
// batches are the BatchLoader's, so they stay a pure function of (seed, step, micro, dp_rank,
// dp_size): prefetching changes when they are read, never what they hold.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "data/batch_loader.h"

namespace rw {

// All micro-batches of one optimizer step: micro-batch m's inputs start at m * batch_size * seq_len.
struct StepBatches {
  std::vector<int32_t> inputs, targets;
};

class BatchPrefetcher {
 public:
  BatchPrefetcher(const BatchLoader& loader, int micro_batches);
  ~BatchPrefetcher();
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // The batches of `step`: taken from the background when prefetch(step) was the last request,
  // otherwise read now. Valid until the next get().
  const StepBatches& get(int64_t step);
  // Starts reading `step`'s batches on the background thread and returns at once.
  void prefetch(int64_t step);
  // Blocks until the background thread is idle; rethrows an error it met.
  void wait();

 private:
  void fill(int64_t step, StepBatches& out) const;
  void run();

  const BatchLoader& loader_;
  int micro_batches_;
  StepBatches current_, next_;
  int64_t next_step_ = -1;  // the step next_ holds, -1 when none
  int64_t requested_ = -1;  // the step the worker is asked to read, -1 when idle
  bool stop_ = false;
  std::exception_ptr error_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::thread worker_;
};

}  // namespace rw
