#include "jobs/launch_env.h"

#include <cstdlib>

#include "core/check.h"
#include "dist/mpi_runtime.h"

namespace rw {
namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

int env_int_or(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::atoi(value) : fallback;
}

}  // namespace

LaunchEnv read_launch_env() {
  LaunchEnv env;
  env.host = host_name();
  // Open MPI first: under mpirun inside a batch job the SLURM_ task variables describe the batch
  // step (one task), not the ranks mpirun started.
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr) {
    env.launcher = "mpirun";
    env.rank = env_int_or("OMPI_COMM_WORLD_RANK", 0);
    env.size = env_int_or("OMPI_COMM_WORLD_SIZE", 1);
    env.local_rank = env_int_or("OMPI_COMM_WORLD_LOCAL_RANK", 0);
  } else if (std::getenv("SLURM_STEP_ID") != nullptr && std::getenv("SLURM_PROCID") != nullptr) {
    env.launcher = "srun";
    env.rank = env_int_or("SLURM_PROCID", 0);
    env.size = env_int_or("SLURM_NTASKS", 1);
    env.local_rank = env_int_or("SLURM_LOCALID", 0);
  }
  env.slurm_job_id = env_or("SLURM_JOB_ID", "");
  env.slurm_restarts = env_int_or("SLURM_RESTART_COUNT", 0);
  env.slurm_nodes = env_or("SLURM_JOB_NODELIST", "");
  return env;
}

std::string describe_launch(const LaunchEnv& env) {
  std::string text = env.launcher.empty() ? format("one process on %s", env.host.c_str())
                                          : format("rank %d of %d (%s, local rank %d) on %s", env.rank, env.size,
                                                   env.launcher.c_str(), env.local_rank, env.host.c_str());
  if (!env.slurm_job_id.empty())
    text += format(", Slurm job %s on %s, restart %d", env.slurm_job_id.c_str(), env.slurm_nodes.c_str(),
                   env.slurm_restarts);
  return text;
}

}  // namespace rw
