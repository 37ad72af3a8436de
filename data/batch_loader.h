// Batches of windows of seq_len+1 tokens, drawn at random or read in order. Which windows a batch
// holds is a pure function of (seed, step, micro-batch, dp_rank, dp_size), so a resumed or
// re-sharded run sees exactly the batches it would have seen.
#pragma once
#include <cstdint>
#include <string>

#include "data/token_source.h"

namespace rw {

// Random: each window starts anywhere, by a hash of (seed, step, micro, global row). Sequential:
// consecutive non-overlapping windows in global-batch order, wrapping round at the end of the
// data (an epoch per pass); the seed is not used.
enum class WindowOrder { Random, Sequential };

class BatchLoader {
 public:
  // grad_accum (micro-batches per step) places sequential windows; random ones do not need it.
  BatchLoader(const TokenSource& source, int batch_size, int seq_len, uint64_t seed, int dp_rank = 0,
              int dp_size = 1, WindowOrder order = WindowOrder::Random, int grad_accum = 1);
  // inputs and targets are [batch_size, seq_len]; targets are inputs shifted by one token.
  void fill(int64_t step, int micro, int32_t* inputs, int32_t* targets) const;
  int batch_size() const { return batch_size_; }
  int seq_len() const { return seq_len_; }

 private:
  const TokenSource& source_;
  int batch_size_, seq_len_;
  uint64_t seed_;
  int dp_rank_, dp_size_;
  WindowOrder order_;
  int grad_accum_;
};

// "random" or "sequential" (the --data-order option); UserError otherwise.
WindowOrder parse_window_order(const std::string& name);

}  // namespace rw
