// `ringwise bench train`: times whole training steps (forward, backward, clipping, AdamW) of the
// configured model on random tokens, so the numbers do not depend on a corpus being installed.
#include <sys/resource.h>

#include <cstdio>

#include "core/blas_kernel.h"
#include "core/cpu_threads.h"
#include "core/random.h"
#include "jobs/commands.h"
#include "jobs/trainer.h"

namespace rw {
namespace {

class RandomTokens : public TokenSource {
 public:
  RandomTokens(int vocab, uint64_t seed) : vocab_(vocab), seed_(seed) {}
  int64_t size() const override { return int64_t{1} << 24; }
  int vocab_size() const override { return vocab_; }
  void read(int64_t offset, int64_t n, int32_t* out) const override {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(hash_keys(seed_, offset + i) % vocab_);
  }
  std::string describe() const override { return "random tokens"; }

 private:
  int vocab_;
  uint64_t seed_;
};

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // Linux reports KiB
}

}  // namespace

int run_bench_train(const BenchTrainOptions& opts) {
  const RunConfig& cfg = opts.run;
  Trainer trainer(cfg, std::make_unique<RandomTokens>(cfg.model.vocab_size, cfg.train.seed));
  const double peak_gflops = measure_sgemm_peak_gflops();
  for (int i = 0; i < opts.warmup_steps; ++i) trainer.step();
  double seconds = 0;
  int64_t tokens = 0;
  for (int i = 0; i < opts.timed_steps; ++i) {
    StepResult r = trainer.step();
    seconds += r.seconds;
    tokens += r.tokens;
  }
  const double tokens_per_s = tokens / seconds;
  const double gflops = tokens_per_s * trainer.flops_per_token() / 1e9;
  const double mfu = gflops / peak_gflops;
  const double step_ms = seconds / opts.timed_steps * 1e3;
  const LlamaConfig& m = cfg.model;
  const TrainConfig& t = cfg.train;
  if (opts.json) {
    std::printf(
        "{\"tokens_per_s\":%.1f,\"step_ms\":%.3f,\"gflops\":%.2f,\"mfu\":%.4f,\"sgemm_peak_gflops\":%.2f,"
        "\"peak_rss_mb\":%.1f,\"params\":%lld,\"threads\":%d,\"batch_size\":%d,\"seq_len\":%d,\"iters\":%d,"
        "\"blas_kernel\":\"%s\"}\n",
        tokens_per_s, step_ms, gflops, mfu, peak_gflops, peak_rss_mb(), m.num_params(), cpu_threads(), t.batch_size,
        t.seq_len, opts.timed_steps, blas_kernel_name());
    return 0;
  }
  std::printf("# ringwise bench train: %.2fM params, d_model %d, %d layers, %d/%d heads, ffn %d, vocab %d\n",
              m.num_params() / 1e6, m.d_model, m.n_layers, m.n_heads, m.n_kv_heads, m.ffn_dim, m.vocab_size);
  std::printf("# batch %d x seq %d x accum %d, attention blocks %dx%d, %d threads, OpenBLAS %s kernels\n",
              t.batch_size, t.seq_len, t.grad_accum, t.attn_block_q, t.attn_block_k, cpu_threads(), blas_kernel_name());
  std::printf("# %d warmup + %d timed steps\n", opts.warmup_steps, opts.timed_steps);
  std::printf("#\n# %10s %12s %10s %12s %8s %12s\n", "step_ms", "tokens/s", "GFLOP/s", "sgemm_peak", "MFU",
              "peak_RSS_MB");
  std::printf("  %10.1f %12.0f %10.1f %12.1f %7.1f%% %12.1f\n", step_ms, tokens_per_s, gflops, peak_gflops, 100 * mfu,
              peak_rss_mb());
  return 0;
}

}  // namespace rw
