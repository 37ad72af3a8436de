#include "jobs/run_config.h"

#include <filesystem>

#include "core/check.h"
#include "data/batch_loader.h"
#include "dist/ulysses_attention.h"
#include "dist/zigzag.h"
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
  RW_USER_CHECK(t.bpt_block >= 0, "--bpt-block must not be negative (0 = off), got %d", t.bpt_block);
  RW_USER_CHECK(t.threads >= 0, "--threads must not be negative (0 = all cores), got %d", t.threads);
  RW_USER_CHECK(t.log_every >= 1, "--log-every must be at least 1, got %d", t.log_every);
  parse_window_order(t.data_order);
  RW_USER_CHECK(t.val_every >= 0, "--val-every must not be negative, got %d", t.val_every);
  RW_USER_CHECK(t.val_batches >= 1, "--val-batches must be at least 1, got %d", t.val_batches);
  RW_USER_CHECK(t.save_every >= 0, "--save-every must not be negative (0 = only at the end), got %d", t.save_every);
  RW_USER_CHECK(t.keep_last >= 0, "--keep-last must not be negative (0 = keep all), got %d", t.keep_last);
  check_data_path(t.data);
  const ParallelConfig& p = parallel;
  RW_USER_CHECK(p.dp >= 1, "--dp must be at least 1, got %d", p.dp);
  RW_USER_CHECK(p.tp >= 1, "--tp must be at least 1, got %d", p.tp);
  model.check_tensor_parallel(p.tp);
  check_zigzag(t.seq_len, p.cp);
  RW_USER_CHECK(p.cp_algo == "ring" || p.cp_algo == "ulysses", "--cp-algo must be ring or ulysses, got '%s'",
                p.cp_algo.c_str());
  if (p.cp_algo == "ulysses") check_ulysses(model.n_heads, model.n_kv_heads, p.cp);
  RW_USER_CHECK(p.ep >= 1, "--ep must be at least 1, got %d", p.ep);
  RW_USER_CHECK(p.ep == 1 || model.moe_experts % p.ep == 0,
                "--ep %d must divide --moe-experts %d (expert parallelism shards the experts)", p.ep, model.moe_experts);
  RW_USER_CHECK(p.ep == 1 || model.moe_experts > 0, "--ep %d needs an MoE model (--moe-experts)", p.ep);
  RW_USER_CHECK(p.zero == 0 || p.zero == 1, "--zero must be 0 or 1 (ZeRO-1), got %d", p.zero);
  RW_USER_CHECK(p.bucket_mb > 0, "--bucket-mb must be positive, got %g", p.bucket_mb);
  RW_USER_CHECK(p.comm_timeout >= 0, "--comm-timeout must not be negative (0 = no watchdog), got %g", p.comm_timeout);
}

}  // namespace rw
