#include "jobs/run_config.h"

#include <filesystem>

#include "core/check.h"
#include "jobs/default_corpus.h"

namespace rw {
namespace {

// The built-in corpus is checked when training starts (see train_command.cpp), so that
// `bench train`, which reads random tokens, runs without the fortunes package.
void check_data_path(const std::string& data) {
  std::error_code ec;
  if (data.empty() || data == kDefaultCorpus || std::filesystem::exists(data, ec)) return;
  throw UserError("--data " + data + " does not exist (it takes a text file or a directory of them)");
}

}  // namespace

void RunConfig::validate() const {
  model.validate();
  const TrainConfig& t = train;
  RW_USER_CHECK(t.seq_len >= 1 && t.seq_len <= model.max_seq, "--seq-len %d must be between 1 and --max-seq %d",
                t.seq_len, model.max_seq);
  RW_USER_CHECK(t.batch_size >= 1, "--batch-size must be at least 1, got %d", t.batch_size);
  RW_USER_CHECK(t.grad_accum >= 1, "--grad-accum must be at least 1, got %d", t.grad_accum);
  RW_USER_CHECK(t.steps >= 1, "--steps must be at least 1, got %d", t.steps);
  // Every float condition is false for NaN, so NaN is rejected too.
  RW_USER_CHECK(t.lr > 0, "--lr must be positive, got %g", t.lr);
  RW_USER_CHECK(t.min_lr >= 0 && t.min_lr <= t.lr, "--min-lr %g must be between 0 and --lr %g", t.min_lr, t.lr);
  RW_USER_CHECK(t.warmup_steps >= 0, "--warmup-steps must not be negative, got %d", t.warmup_steps);
  RW_USER_CHECK(t.beta1 >= 0 && t.beta1 < 1, "--beta1 must be in [0, 1), got %g", t.beta1);
  RW_USER_CHECK(t.beta2 >= 0 && t.beta2 < 1, "--beta2 must be in [0, 1), got %g", t.beta2);
  RW_USER_CHECK(t.adam_eps > 0, "--adam-eps must be positive, got %g", t.adam_eps);
  RW_USER_CHECK(t.weight_decay >= 0, "--weight-decay must not be negative, got %g", t.weight_decay);
  RW_USER_CHECK(t.grad_clip >= 0, "--grad-clip must not be negative (0 disables clipping), got %g", t.grad_clip);
  RW_USER_CHECK(t.attn_block_q >= 1, "--attn-block-q must be at least 1, got %d", t.attn_block_q);
  RW_USER_CHECK(t.attn_block_k >= 1, "--attn-block-k must be at least 1, got %d", t.attn_block_k);
  RW_USER_CHECK(t.threads >= 0, "--threads must not be negative (0 = all cores), got %d", t.threads);
  RW_USER_CHECK(t.log_every >= 1, "--log-every must be at least 1, got %d", t.log_every);
  check_data_path(t.data);
}

}  // namespace rw
