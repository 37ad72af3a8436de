// What a training run shows while it works: a JSONL metrics file (one object per report, for plots
// and for comparing runs exactly) and the terminal view, either a live line on a TTY or one plain
// llm.c-style line per report when the output goes to a file or pipe.
#pragma once
#include <cmath>
#include <cstdio>
#include <deque>
#include <string>
#include <utility>

namespace rw {

struct StepMetrics {
  int step = 0;           // 1-based step just finished
  int total_steps = 0;
  double loss = 0, lr = 0, grad_norm = 0;
  double tokens_per_s = 0;
  double mfu = 0;         // model FLOPs utilization as a fraction (0.412 is shown as 41.2%)
  double elapsed_s = 0;   // since training started
  double val_loss = NAN;  // validation loss when measured at this step, else NaN (and left out)
  // MoE models only (moe_aux_loss NaN otherwise, and both left out): the load-balancing loss summed
  // over MoE layers (not weighted; 1 per layer when balanced) and the assignments dropped over capacity.
  double moe_aux_loss = NAN;
  long long moe_dropped = 0;
};

bool stdout_is_tty();

class ProgressReporter {
 public:
  // metrics_path: JSONL file (created with its directory; truncated), one line per report():
  // {"step":..,"loss":..,"lr":..,"grad_norm":..,"tokens_per_s":..,"mfu":..,"elapsed_s":..} plus
  // "val_loss":.. on steps that measured it, "moe_aux_loss":.., "moe_dropped":.. for MoE, flushed
  // each line; an empty path writes no file. interactive: a live single progress line on a
  // terminal (\r, step/total, loss, lr, tok/s, ETA from the recent step rate); otherwise one plain
  // line per report: "step    12/300 | loss 3.4521 | norm 1.23 | lr 1.00e-03 | 812 ms | 2510 tok/s |
  // MFU 41.2% | ETA 4m01s". Both go to stdout. UserError when the metrics file cannot be created.
  // first_step > 0 continues a resumed run: the file keeps its lines up to that step (later ones
  // came from steps the checkpoint does not hold and are about to be trained again) and grows.
  ProgressReporter(const std::string& metrics_path, int total_steps, bool interactive, int first_step = 0);
  ~ProgressReporter();
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  void report(const StepMetrics& m);
  void finish();  // ends the live line with a newline

 private:
  void write_json(const StepMetrics& m);
  void keep_lines_up_to(const std::string& path, int step);
  double eta_seconds(const StepMetrics& m) const;

  std::FILE* metrics_ = nullptr;
  int total_steps_;
  bool interactive_;
  bool live_line_open_ = false;
  int last_committed_tenth_ = 0;
  // (step, elapsed_s) of recent reports: the step rate behind the ETA and the ms per step.
  std::deque<std::pair<int, double>> recent_;
};

}  // namespace rw
