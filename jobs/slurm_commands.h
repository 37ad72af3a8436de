// The Slurm client commands ringwise runs: sbatch to submit a job, scontrol to requeue one.
// Each failure is a UserError quoting the command and what it printed.
#pragma once
#include <string>

namespace rw {

// Submits a batch script; returns the job id sbatch printed.
std::string sbatch_submit(const std::string& script_path);

// Puts a running job back in the queue: Slurm ends it now and starts it again when resources allow.
void scontrol_requeue(const std::string& job_id);

// `text` single-quoted for a POSIX shell, whatever it contains.
std::string shell_quote(const std::string& text);

}  // namespace rw
