// `ringwise train`: builds the run, then one line (or live line) of progress per reported step.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/blas_kernel.h"
#include "core/check.h"
#include "core/cpu_threads.h"
#include "data/hdf5_tokens.h"
#include "dist/mpi_runtime.h"
#include "dist/watchdog.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"
#include "jobs/default_corpus.h"
#include "jobs/launch_env.h"
#include "jobs/progress.h"
#include "jobs/slurm_commands.h"
#include "jobs/stop_signal.h"
#include "jobs/trainer.h"
#include "jobs/trainer_checkpoint.h"

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

bool saves_checkpoint_at(const TrainConfig& t, int step) {
  return step == t.steps || (t.save_every > 0 && step % t.save_every == 0);
}

// Whether the run stops after `step` because a rank received SIGUSR1/SIGTERM (jobs/stop_signal.h).
// Every rank calls it after every step (the agreement is a collective) and, when stopping, gathers
// what the checkpoint needs unless the step saved one anyway. The last step ends the run normally.
StopRequest stop_for_signal(Trainer& trainer, int step) {
  const TrainConfig& t = trainer.config().train;
  if (step >= t.steps) return StopRequest::kNone;
  const StopRequest request = stop_requested_on_any_rank(trainer.grid().world());
  if (request != StopRequest::kNone && !saves_checkpoint_at(t, step)) trainer.gather_optimizer_state();
  return request;
}

// Rank 0, after the checkpoint of `step` is saved: on Slurm's time-limit warning inside a Slurm
// job, back to the queue, where the next start resumes from that checkpoint (`ringwise submit`
// sets --resume auto).
int requeue_after_signal(int step, StopRequest request) {
  const std::string job_id = read_launch_env().slurm_job_id;
  const bool requeue = request == StopRequest::kStopAndRequeue && !job_id.empty();
  const std::string next =
      requeue ? format("requeueing Slurm job %s", job_id.c_str()) : std::string("continue with --resume auto");
  std::printf("stopped after step %d on %s, checkpoint saved; %s\n", step,
              request == StopRequest::kStopAndRequeue ? "SIGUSR1" : "SIGTERM", next.c_str());
  std::fflush(stdout);
  if (requeue) scontrol_requeue(job_id);
  return kExitStoppedBySignal;
}

// Ranks other than 0 train in lockstep with rank 0 (every step's collectives need them) but print
// and write nothing. Loss and gradient norm are global, so they stop at the step rank 0 stops at.
int train_silently(Trainer& trainer) {
  int bad_steps = 0;
  while (trainer.steps_done() < trainer.config().train.steps) {
    const StepResult r = trainer.step();
    if (trainer.has_validation() && r.step % trainer.config().train.val_every == 0) trainer.validation_loss();
    if (saves_checkpoint_at(trainer.config().train, r.step)) trainer.gather_optimizer_state();
    bad_steps = std::isfinite(r.loss) && std::isfinite(r.grad_norm) ? 0 : bad_steps + 1;
    if (bad_steps >= kMaxBadSteps) return 1;
    if (stop_for_signal(trainer, r.step) != StopRequest::kNone) return kExitStoppedBySignal;
  }
  return 0;
}

}  // namespace

int run_train(const RunConfig& cfg) {
  if (launched_by_mpirun()) mpi_init(nullptr, nullptr);
  install_stop_signal_handlers();
  const Watchdog watchdog(world_size() > 1 ? cfg.parallel.comm_timeout : 0);
  const std::string data_path = cfg.train.data.empty() ? kDefaultCorpus : cfg.train.data;
  std::error_code ec;
  RW_USER_CHECK(data_path != kDefaultCorpus || std::filesystem::exists(data_path, ec),
                "the default corpus %s is missing: install the Debian 'fortunes' package or pass --data FILE",
                kDefaultCorpus);
  // An HDF5 token dataset is recognised by its signature; anything else is text read as bytes.
  const bool dataset = is_hdf5_file(data_path);
  RW_USER_CHECK(dataset || cfg.train.val_every == 0,
                "--val-every needs a token dataset with a validation split (see 'ringwise prepare'), but %s is text",
                data_path.c_str());
  Trainer trainer(cfg, dataset ? open_token_dataset(data_path, TokenSplit::kTrain) : open_text_tokens(data_path),
                  cfg.train.val_every > 0 ? open_token_dataset(data_path, TokenSplit::kVal) : nullptr);
  // Before anything is written, so that a checkpoint that does not fit leaves the run directory as it was.
  const std::string resume = resume_path(cfg.train);
  if (!resume.empty()) resume_trainer(trainer, resume);
  if (world_rank() != 0) return train_silently(trainer);
  save_config(cfg);
  const std::string metrics = cfg.train.metrics.empty() ? cfg.train.run_dir + "/metrics.jsonl" : cfg.train.metrics;
  const double peak_gflops = measure_sgemm_peak_gflops();
  const LlamaConfig& m = cfg.model;
  const TrainConfig& t = cfg.train;
  std::printf("ringwise train: %.2fM parameters (d_model %d, %d layers, %d/%d heads, ffn %d, vocab %d)\n",
              m.num_params() / 1e6, m.d_model, m.n_layers, m.n_heads, m.n_kv_heads, m.ffn_dim, m.vocab_size);
  std::printf("  data     %s\n", trainer.data_description().c_str());
  if (trainer.has_validation())
    std::printf("  val      every %d steps, mean loss of the same %d batches of the validation split\n", t.val_every,
                t.val_batches);
  const int dp = cfg.parallel.dp;
  const std::string ranks = dp > 1 ? format(" x %d dp ranks%s", dp, cfg.parallel.zero ? " (ZeRO-1)" : "") : "";
  std::printf("  batch    %d x %d tokens x %d accumulation%s = %d tokens/step, %d steps\n", t.batch_size, t.seq_len,
              t.grad_accum, ranks.c_str(), t.batch_size * t.seq_len * t.grad_accum * dp, t.steps);
  const ParallelConfig& par = cfg.parallel;
  const std::string bpt = t.bpt_block > 0 ? format("MLPs and loss in blocks of %d tokens (BPT)", t.bpt_block)
                                          : std::string("MLPs and loss unblocked");
  std::printf("  layout   dp %d x tp %d x cp %d (%s) x ep %d; attention blocks %dx%d; %s\n", par.dp, par.tp, par.cp,
              par.cp_algo.c_str(), par.ep, t.attn_block_q, t.attn_block_k, bpt.c_str());
  std::printf("  threads  %d, OpenBLAS %s kernels (sgemm peak %.1f GFLOP/s, the MFU denominator)\n", cpu_threads(),
              blas_kernel_name(), peak_gflops);
  std::printf("  outputs  %s/config.ini, %s, checkpoints in %s\n", t.run_dir.c_str(), metrics.c_str(),
              checkpoint_dir(t).c_str());
  const LaunchEnv launch = read_launch_env();
  if (!launch.launcher.empty() || !launch.slurm_job_id.empty())
    std::printf("  launch   %s\n", describe_launch(launch).c_str());
  if (!resume.empty()) std::printf("  resumed  from %s at step %d\n", resume.c_str(), trainer.steps_done());
  std::fflush(stdout);
  const int start_step = trainer.steps_done();
  if (start_step >= t.steps) {
    std::printf("done: already at step %d of %d, nothing to train\n", start_step, t.steps);
    return 0;
  }

  // mpirun gives its ranks a pseudo-terminal even when its own output goes to a file: plain lines.
  ProgressReporter progress(metrics, t.steps, stdout_is_tty() && !launched_by_mpirun(), start_step);
  double elapsed = 0, window_s = 0;
  int64_t window_tokens = 0;
  int bad_steps = 0;
  float first_loss = NAN, last_loss = NAN;
  while (trainer.steps_done() < t.steps) {
    StepResult r = trainer.step();
    elapsed += r.seconds;
    window_s += r.seconds;
    window_tokens += r.tokens;
    if (r.step == start_step + 1) first_loss = r.loss;
    last_loss = r.loss;
    bad_steps = std::isfinite(r.loss) && std::isfinite(r.grad_norm) ? 0 : bad_steps + 1;
    const bool validate = trainer.has_validation() && r.step % t.val_every == 0;
    const float val_loss = validate ? trainer.validation_loss() : NAN;
    if (r.step % t.log_every == 0 || r.step == t.steps || bad_steps > 0 || validate) {
      StepMetrics sm;
      sm.step = r.step;
      sm.total_steps = t.steps;
      sm.loss = r.loss;
      sm.lr = r.lr;
      sm.grad_norm = r.grad_norm;
      sm.tokens_per_s = window_tokens / window_s;
      // Every rank's cores count, whichever axis it sits on.
      sm.mfu = sm.tokens_per_s * trainer.flops_per_token() / (peak_gflops * 1e9 * trainer.grid().world().size());
      sm.elapsed_s = elapsed;
      sm.val_loss = val_loss;
      sm.moe_aux_loss = r.moe_aux_loss;
      sm.moe_dropped = r.moe_dropped;
      progress.report(sm);
      window_s = 0;
      window_tokens = 0;
    }
    if (saves_checkpoint_at(t, r.step)) {
      trainer.gather_optimizer_state();  // with every rank
      const SavedCheckpoint saved = save_trainer_checkpoint(trainer);
      progress.finish();
      std::printf("saved checkpoint %s (%.1f MB, %.2f s)\n", saved.path.c_str(), saved.bytes / 1e6, saved.seconds);
      std::fflush(stdout);
    }
    if (bad_steps >= kMaxBadSteps) {
      progress.finish();
      std::fprintf(stderr,
                   "ringwise: failed: loss or gradient was not finite for %d steps in a row (step %d); the updates "
                   "were skipped. Lower --lr or raise --warmup-steps.\n",
                   bad_steps, r.step);
      return 1;
    }
    if (const StopRequest request = stop_for_signal(trainer, r.step); request != StopRequest::kNone) {
      progress.finish();
      if (!saves_checkpoint_at(t, r.step)) {
        const SavedCheckpoint saved = save_trainer_checkpoint(trainer);
        std::printf("saved checkpoint %s (%.1f MB, %.2f s)\n", saved.path.c_str(), saved.bytes / 1e6, saved.seconds);
      }
      return requeue_after_signal(r.step, request);
    }
  }
  progress.finish();
  const int trained = t.steps - start_step;
  std::printf("done: %d steps in %.1f s, loss %.4f -> %.4f, %.0f tokens/s\n", trained, elapsed, first_loss, last_loss,
              static_cast<double>(trained) * t.batch_size * t.seq_len * t.grad_accum * dp / elapsed);
  return 0;
}

}  // namespace rw
