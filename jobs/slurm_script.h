// The sbatch script `ringwise submit` writes: the resources asked for, a warning signal before the
// time limit and --requeue, and a launcher that starts `ringwise train` on every rank.
#pragma once
#include <string>

namespace rw {

struct SlurmJobSpec {
  int nodes = 1;
  int ntasks_per_node = 1;
  int gpus_per_node = 0;
  std::string time;              // the time limit, [D-]HH:MM:SS
  int signal_before_s = 120;     // SIGUSR1 this long before the limit
  std::string partition, account;  // empty: the cluster's default
  std::string job_name = "ringwise";
  std::string launcher = "srun";   // "srun" (srun --mpi=pmix) or "mpirun"
  // Absolute paths: the job starts in work_dir and trains with `ringwise train --config config`.
  std::string ringwise, config, run_dir, work_dir;
};

// Seconds in a [D-]HH:MM:SS time limit; UserError naming --time otherwise.
int parse_time_limit(const std::string& time);

// The script's text. UserError when the spec cannot work (bad launcher, signal after the limit...).
std::string sbatch_script(const SlurmJobSpec& spec);

}  // namespace rw
