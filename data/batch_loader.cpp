#include "data/batch_loader.h"

#include "core/check.h"
#include "core/random.h"

#include <vector>

namespace rw {

BatchLoader::BatchLoader(const TokenSource& source, int batch_size, int seq_len, uint64_t seed, int dp_rank,
                         int dp_size, WindowOrder order, int grad_accum)
    : source_(source),
      batch_size_(batch_size),
      seq_len_(seq_len),
      seed_(seed),
      dp_rank_(dp_rank),
      dp_size_(dp_size),
      order_(order),
      grad_accum_(grad_accum) {
  RW_USER_CHECK(source.size() > seq_len, "%s is too short for seq_len %d: it needs at least %d tokens",
                source.describe().c_str(), seq_len, seq_len + 1);
  RW_CHECK(dp_rank >= 0 && dp_rank < dp_size, "dp_rank %d outside dp_size %d", dp_rank, dp_size);
}

void BatchLoader::fill(int64_t step, int micro, int32_t* inputs, int32_t* targets) const {
  const int64_t windows = source_.size() - seq_len_;  // start positions with seq_len+1 tokens after them
  std::vector<int32_t> window(seq_len_ + 1);
  for (int b = 0; b < batch_size_; ++b) {
    // The row's index in the global batch, so a single process with batch dp_size*B sees the same
    // rows as dp_size ranks with batch B each.
    int64_t global_row = static_cast<int64_t>(dp_rank_) * batch_size_ + b;
    int64_t start;
    if (order_ == WindowOrder::Random) {
      start = static_cast<int64_t>(hash_keys(seed_, step, micro, global_row) % windows);
    } else {
      const int64_t rows_per_micro = static_cast<int64_t>(dp_size_) * batch_size_;
      const int64_t index = (step * grad_accum_ + micro) * rows_per_micro + global_row;
      start = index * seq_len_ % windows;
    }
    source_.read(start, seq_len_ + 1, window.data());
    for (int t = 0; t < seq_len_; ++t) {
      inputs[b * seq_len_ + t] = window[t];
      targets[b * seq_len_ + t] = window[t + 1];
    }
  }
}

WindowOrder parse_window_order(const std::string& name) {
  if (name == "random") return WindowOrder::Random;
  if (name == "sequential") return WindowOrder::Sequential;
  throw UserError("data-order must be random or sequential, got '" + name + "'");
}

}  // namespace rw
