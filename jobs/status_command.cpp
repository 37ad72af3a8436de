// `ringwise status RUN_DIR`: where a run stands, from the files it leaves behind: the last reported
// step and loss (metrics), the checkpoints a resume would use, and the Slurm jobs that ran it
// (jobs.log, written by `ringwise submit` and its batch script).
#include <boost/program_options.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/check.h"
#include "data/hdf5_checkpoint.h"
#include "jobs/cli.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"
#include "jobs/metrics_file.h"
#include "jobs/trainer_checkpoint.h"

namespace po = boost::program_options;

namespace rw {
namespace {

// The run's own options when it saved them (its metrics and checkpoint paths may be elsewhere),
// else the defaults for that directory.
TrainConfig run_train_config(const std::string& run_dir) {
  const std::string ini = run_dir + "/config.ini";
  TrainConfig t;
  t.run_dir = run_dir;
  std::error_code ec;
  if (!std::filesystem::exists(ini, ec)) return t;
  po::options_description desc = run_options();
  desc.add_options()("config", po::value<std::string>());
  t = resolve_run_config(parse_command_line({"--config", ini}, desc, "status")).train;
  t.run_dir = run_dir;  // the directory may have moved since
  return t;
}

}  // namespace

int status_command(const std::vector<std::string>& args) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << "Usage: ringwise status RUN_DIR\n"
                 "\n"
                 "Prints the last reported step and loss of a training run, its checkpoints and the Slurm\n"
                 "jobs that ran it (from RUN_DIR/metrics.jsonl, checkpoints/ and jobs.log).\n";
    return 0;
  }
  RW_USER_CHECK(args.size() == 1, "'ringwise status' takes one run directory, e.g. ringwise status runs/latest");
  const std::string run_dir = args[0];
  std::error_code ec;
  RW_USER_CHECK(std::filesystem::is_directory(run_dir, ec), "run directory %s does not exist", run_dir.c_str());
  const TrainConfig t = run_train_config(run_dir);
  std::printf("run %s\n", run_dir.c_str());

  const std::string metrics = t.metrics.empty() ? run_dir + "/metrics.jsonl" : t.metrics;
  if (std::filesystem::exists(metrics, ec)) {
    const std::vector<MetricsPoint> points = read_metrics_file(metrics);
    if (points.empty()) {
      std::printf("  metrics     %s: no step reported yet\n", metrics.c_str());
    } else {
      const MetricsPoint& last = points.back();
      std::printf("  last step   %d of %d, loss %.4f, lr %.3g, %.0f tokens/s\n", last.step, t.steps, last.loss, last.lr,
                  last.tokens_per_s);
    }
  } else {
    std::printf("  metrics     none yet (%s)\n", metrics.c_str());
  }

  const std::vector<CheckpointEntry> checkpoints = list_checkpoints(checkpoint_dir(t));
  std::printf("  checkpoints %zu in %s\n", checkpoints.size(), checkpoint_dir(t).c_str());
  for (const CheckpointEntry& c : checkpoints) std::printf("    step %-8lld %s\n", static_cast<long long>(c.step), c.path.c_str());

  std::ifstream jobs(run_dir + "/jobs.log");
  if (jobs.is_open()) {
    std::printf("  slurm jobs (jobs.log)\n");
    for (std::string line; std::getline(jobs, line);) std::printf("    %s\n", line.c_str());
  }
  return 0;
}

}  // namespace rw
