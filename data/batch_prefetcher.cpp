#include "data/batch_prefetcher.h"

#include <utility>

namespace rw {

BatchPrefetcher::BatchPrefetcher(const BatchLoader& loader, int micro_batches)
    : loader_(loader), micro_batches_(micro_batches), worker_([this] { run(); }) {}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

void BatchPrefetcher::fill(int64_t step, StepBatches& out) const {
  const size_t n = static_cast<size_t>(loader_.batch_size()) * loader_.seq_len();
  out.inputs.resize(n * micro_batches_);
  out.targets.resize(n * micro_batches_);
  for (int m = 0; m < micro_batches_; ++m) loader_.fill(step, m, out.inputs.data() + m * n, out.targets.data() + m * n);
}

void BatchPrefetcher::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stop_ || requested_ >= 0; });
    if (stop_) return;
    const int64_t step = requested_;
    lock.unlock();
    std::exception_ptr error;
    try {
      fill(step, next_);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    next_step_ = error ? -1 : step;
    error_ = error;
    requested_ = -1;
    changed_.notify_all();
  }
}

void BatchPrefetcher::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return requested_ < 0; });
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void BatchPrefetcher::prefetch(int64_t step) {
  wait();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    requested_ = step;
    next_step_ = -1;
  }
  changed_.notify_all();
}

const StepBatches& BatchPrefetcher::get(int64_t step) {
  wait();
  if (next_step_ == step) {
    std::swap(current_, next_);
    next_step_ = -1;
  } else {
    fill(step, current_);
  }
  return current_;
}

}  // namespace rw
