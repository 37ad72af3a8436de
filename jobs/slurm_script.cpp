#include "jobs/slurm_script.h"

#include <cstdio>

#include "core/check.h"
#include "jobs/slurm_commands.h"

namespace rw {

int parse_time_limit(const std::string& time) {
  int days = 0, h = 0, m = 0, s = 0, used = 0;
  const bool with_days = std::sscanf(time.c_str(), "%d-%d:%d:%d%n", &days, &h, &m, &s, &used) == 4;
  const bool plain = !with_days && std::sscanf(time.c_str(), "%d:%d:%d%n", &h, &m, &s, &used) == 3;
  RW_USER_CHECK((with_days || plain) && used == static_cast<int>(time.size()) && days >= 0 && h >= 0 && m >= 0 &&
                    m < 60 && s >= 0 && s < 60,
                "invalid value '%s' for --time: expected HH:MM:SS or D-HH:MM:SS", time.c_str());
  const int seconds = ((days * 24 + h) * 60 + m) * 60 + s;
  RW_USER_CHECK(seconds > 0, "--time must be longer than zero, got %s", time.c_str());
  return seconds;
}

std::string sbatch_script(const SlurmJobSpec& spec) {
  RW_USER_CHECK(spec.launcher == "srun" || spec.launcher == "mpirun",
                "invalid value '%s' for --launcher: expected srun or mpirun", spec.launcher.c_str());
  RW_USER_CHECK(spec.nodes >= 1, "--nodes must be at least 1, got %d", spec.nodes);
  RW_USER_CHECK(spec.ntasks_per_node >= 1, "--ntasks-per-node must be at least 1, got %d", spec.ntasks_per_node);
  RW_USER_CHECK(spec.gpus_per_node >= 0, "--gpus-per-node must not be negative, got %d", spec.gpus_per_node);
  const int limit_s = parse_time_limit(spec.time);
  RW_USER_CHECK(spec.signal_before_s > 0 && spec.signal_before_s < limit_s,
                "--signal-before %d s must be above 0 and below the --time limit (%s = %d s)", spec.signal_before_s,
                spec.time.c_str(), limit_s);
  RW_USER_CHECK(spec.job_name.find_first_of(" \t\n'\"") == std::string::npos,
                "--job-name must not contain spaces or quotes, got '%s'", spec.job_name.c_str());
  // #SBATCH lines are not shell words: a space would end the path.
  for (const std::string& dir : {spec.run_dir, spec.work_dir})
    RW_USER_CHECK(dir.find_first_of(" \t\n") == std::string::npos,
                  "the job's directory '%s' contains white space, which #SBATCH --chdir/--output cannot take",
                  dir.c_str());

  std::string s = "#!/bin/bash\n";
  auto directive = [&s](const std::string& text) { s += "#SBATCH " + text + "\n"; };
  directive("--job-name=" + spec.job_name);
  directive(format("--nodes=%d", spec.nodes));
  directive(format("--ntasks-per-node=%d", spec.ntasks_per_node));
  if (spec.gpus_per_node > 0) directive(format("--gpus-per-node=%d", spec.gpus_per_node));
  directive("--time=" + spec.time);
  if (!spec.partition.empty()) directive("--partition=" + spec.partition);
  if (!spec.account.empty()) directive("--account=" + spec.account);
  directive("--chdir=" + spec.work_dir);
  directive("--output=" + spec.run_dir + "/slurm-%j.out");
  directive("--open-mode=append");  // a requeued job's log continues the first one's
  directive(format("--signal=B:USR1@%d", spec.signal_before_s));
  directive("--requeue");
  s += "#\n"
       "# Written by `ringwise submit`. Slurm sends USR1 to this shell (B:) before the time limit; the\n"
       "# trap passes it to the ranks, which finish their step, save a checkpoint and requeue the job.\n"
       "# Every start resumes from the newest checkpoint (resume = auto in the config file).\n";
  const std::string log = shell_quote(spec.run_dir + "/jobs.log");
  s += "echo \"started $SLURM_JOB_ID restart ${SLURM_RESTART_COUNT:-0} on $(hostname) at $(date -u +%FT%TZ)\" >> " +
       log + "\n";
  const std::string launch = spec.launcher == "srun" ? "srun --mpi=pmix" : "mpirun";
  s += launch + " " + shell_quote(spec.ringwise) + " train --config " + shell_quote(spec.config) + " &\n";
  s += "ranks=$!\n"
       "trap 'kill -USR1 $ranks' USR1\n"
       "# wait also returns when the trap runs: wait again until the ranks have exited.\n"
       "while true; do\n"
       "  wait $ranks\n"
       "  status=$?\n"
       "  kill -0 $ranks 2>/dev/null || break\n"
       "done\n"
       "echo \"ended $SLURM_JOB_ID with exit code $status at $(date -u +%FT%TZ)\" >> " +
       log +
       "\n"
       "exit $status\n";
  return s;
}

}  // namespace rw
