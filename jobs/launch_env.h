// Where this process sits in a multi-process launch, read from the environment of whichever
// launcher started it: Open MPI's mpirun (OMPI_COMM_WORLD_*) or Slurm's srun (SLURM_PROCID, ...),
// plus the Slurm job around it when there is one (SLURM_JOB_ID, also set for mpirun in a batch job).
#pragma once
#include <string>

namespace rw {

struct LaunchEnv {
  std::string launcher;   // "mpirun", "srun" or "" (started directly)
  int rank = 0, size = 1;
  int local_rank = 0;     // among the ranks of this host
  std::string host;
  std::string slurm_job_id;  // "" outside Slurm
  int slurm_restarts = 0;    // times Slurm requeued and restarted the job
  std::string slurm_nodes;   // the job's node list, as Slurm writes it
};

LaunchEnv read_launch_env();

// One line for the training header, e.g. "rank 0 of 2 (srun) on node1, Slurm job 41 on node[1-2], restart 1".
std::string describe_launch(const LaunchEnv& env);

}  // namespace rw
