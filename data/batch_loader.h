// Batches of random windows of seq_len+1 tokens. Which windows a batch holds is a pure function of
// (seed, step, micro-batch, dp_rank, dp_size), so a resumed or re-sharded run sees exactly the
// batches it would have seen.
#pragma once
#include <cstdint>

#include "data/token_source.h"

namespace rw {

class BatchLoader {
 public:
  BatchLoader(const TokenSource& source, int batch_size, int seq_len, uint64_t seed, int dp_rank = 0,
              int dp_size = 1);
  // inputs and targets are [batch_size, seq_len]; targets are inputs shifted by one token.
  void fill(int64_t step, int micro, int32_t* inputs, int32_t* targets) const;
  int batch_size() const { return batch_size_; }
  int seq_len() const { return seq_len_; }

 private:
  const TokenSource& source_;
  int batch_size_, seq_len_;
  uint64_t seed_;
  int dp_rank_, dp_size_;
};

}  // namespace rw
