// `ringwise train`: builds the run, then one line (or live line) of progress per reported step.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/blas_kernel.h"
#include "core/check.h"
#include "core/cpu_threads.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"
#include "jobs/default_corpus.h"
#include "jobs/progress.h"
#include "jobs/trainer.h"

namespace rw {
namespace {

// Steps in a row with a non-finite loss or gradient before the run is declared diverged.
constexpr int kMaxBadSteps = 5;

// The resolved configuration beside the metrics, so a run can be repeated with --config.
void save_config(const RunConfig& cfg) {
  std::error_code ec;
  std::filesystem::create_directories(cfg.train.run_dir, ec);
  RW_USER_CHECK(!ec, "cannot create run directory %s: %s", cfg.train.run_dir.c_str(), ec.message().c_str());
  const std::string path = cfg.train.run_dir + "/config.ini";
  std::ofstream out(path);
  write_config_file(out, cfg);
  RW_USER_CHECK(out.good(), "cannot write %s", path.c_str());
}

}  // namespace

int run_train(const RunConfig& cfg) {
  const std::string data_path = cfg.train.data.empty() ? kDefaultCorpus : cfg.train.data;
  std::error_code ec;
  RW_USER_CHECK(data_path != kDefaultCorpus || std::filesystem::exists(data_path, ec),
                "the default corpus %s is missing: install the Debian 'fortunes' package or pass --data FILE",
                kDefaultCorpus);
  Trainer trainer(cfg, open_text_tokens(data_path));
  save_config(cfg);
  const std::string metrics = cfg.train.metrics.empty() ? cfg.train.run_dir + "/metrics.jsonl" : cfg.train.metrics;
  const double peak_gflops = measure_sgemm_peak_gflops();
  const LlamaConfig& m = cfg.model;
  const TrainConfig& t = cfg.train;
  std::printf("ringwise train: %.2fM parameters (d_model %d, %d layers, %d/%d heads, ffn %d, vocab %d)\n",
              m.num_params() / 1e6, m.d_model, m.n_layers, m.n_heads, m.n_kv_heads, m.ffn_dim, m.vocab_size);
  std::printf("  data     %s\n", trainer.data_description().c_str());
  std::printf("  batch    %d x %d tokens x %d accumulation = %d tokens/step, %d steps\n", t.batch_size, t.seq_len,
              t.grad_accum, t.batch_size * t.seq_len * t.grad_accum, t.steps);
  std::printf("  threads  %d, OpenBLAS %s kernels (sgemm peak %.1f GFLOP/s, the MFU denominator)\n", cpu_threads(),
              blas_kernel_name(), peak_gflops);
  std::printf("  outputs  %s/config.ini, %s\n", t.run_dir.c_str(), metrics.c_str());
  std::fflush(stdout);

  ProgressReporter progress(metrics, t.steps, stdout_is_tty());
  double elapsed = 0, window_s = 0;
  int64_t window_tokens = 0;
  int bad_steps = 0;
  float first_loss = NAN, last_loss = NAN;
  while (trainer.steps_done() < t.steps) {
    StepResult r = trainer.step();
    elapsed += r.seconds;
    window_s += r.seconds;
    window_tokens += r.tokens;
    if (r.step == 1) first_loss = r.loss;
    last_loss = r.loss;
    bad_steps = std::isfinite(r.loss) && std::isfinite(r.grad_norm) ? 0 : bad_steps + 1;
    if (r.step % t.log_every == 0 || r.step == t.steps || bad_steps > 0) {
      StepMetrics sm;
      sm.step = r.step;
      sm.total_steps = t.steps;
      sm.loss = r.loss;
      sm.lr = r.lr;
      sm.grad_norm = r.grad_norm;
      sm.tokens_per_s = window_tokens / window_s;
      sm.mfu = sm.tokens_per_s * trainer.flops_per_token() / (peak_gflops * 1e9);
      sm.elapsed_s = elapsed;
      progress.report(sm);
      window_s = 0;
      window_tokens = 0;
    }
    if (bad_steps >= kMaxBadSteps) {
      progress.finish();
      std::fprintf(stderr,
                   "ringwise: failed: loss or gradient was not finite for %d steps in a row (step %d); the updates "
                   "were skipped. Lower --lr or raise --warmup-steps.\n",
                   bad_steps, r.step);
      return 1;
    }
  }
  progress.finish();
  std::printf("done: %d steps in %.1f s, loss %.4f -> %.4f, %.0f tokens/s\n", t.steps, elapsed, first_loss, last_loss,
              static_cast<double>(t.steps) * t.batch_size * t.seq_len * t.grad_accum / elapsed);
  return 0;
}

}  // namespace rw
