// `ringwise submit`: a training run as a Slurm batch job. Writes <run-dir>/config.ini (the run's
// options with resume = auto) and <run-dir>/job.sbatch (jobs/slurm_script.h), submits it with
// sbatch and records the job id in <run-dir>/jobs.log; --dry-run only prints the script.
#include <boost/program_options.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/check.h"
#include "jobs/cli.h"
#include "jobs/cli_options.h"
#include "jobs/commands.h"
#include "jobs/slurm_commands.h"
#include "jobs/slurm_script.h"

namespace po = boost::program_options;

namespace rw {
namespace {

void print_submit_help(std::ostream& out) {
  out << "Usage: ringwise submit [train options] --time HH:MM:SS [job options]\n"
         "\n"
         "Submits `ringwise train` with the given options as a Slurm batch job and prints its id.\n"
         "The job asks for SIGUSR1 --signal-before seconds before its time limit and is requeueable:\n"
         "on the signal the ranks finish their step, save a checkpoint and requeue the job, which\n"
         "resumes from that checkpoint, so a chain of time-limited jobs trains to the end. The run\n"
         "directory gets config.ini, job.sbatch, jobs.log and the job's output slurm-<id>.out.\n";
  print_option_lines(out, "Job",
                     {{"--nodes N", "nodes (default 1)"},
                      {"--ntasks-per-node T", "MPI ranks per node (default 1); nodes x T = dp x tp x cp x ep"},
                      {"--gpus-per-node G", "GPUs per node (default 0: none asked for)"},
                      {"--time HH:MM:SS", "time limit of each job in the chain (required; D-HH:MM:SS too)"},
                      {"--signal-before S", "seconds before the limit to checkpoint and requeue (default 120)"},
                      {"--partition P", "Slurm partition (default: the cluster's)"},
                      {"--account A", "Slurm account (default: the user's)"},
                      {"--job-name J", "job name (default ringwise)"},
                      {"--launcher L", "srun (srun --mpi=pmix, default) or mpirun (Open MPI inside the job)"},
                      {"--dry-run", "print the batch script; write and submit nothing"}});
  print_run_options_help(out);
  out << "\nExample:\n"
         "  ringwise submit --preset small --steps 5000 --save-every 500 --dp 8 \\\n"
         "      --nodes 2 --ntasks-per-node 4 --time 04:00:00 --partition gpu --run-dir runs/small\n";
}

std::string now_utc() {
  char buf[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buf;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  RW_USER_CHECK(out.good(), "cannot write %s", path.c_str());
}

}  // namespace

int submit_command(const std::vector<std::string>& args) {
  po::options_description desc = run_options();
  desc.add_options()("config", po::value<std::string>())("help,h", "")("dry-run", "");
  for (const char* name : {"nodes", "ntasks-per-node", "gpus-per-node", "time", "signal-before", "partition",
                           "account", "job-name", "launcher"})
    desc.add_options()(name, po::value<std::string>());
  const po::variables_map vm = parse_command_line(args, desc, "submit");
  if (vm.count("help")) {
    print_submit_help(std::cout);
    return 0;
  }
  RunConfig cfg = resolve_run_config(vm);
  auto text = [&vm](const char* name, const std::string& fallback) {
    return vm.count(name) ? vm[name].as<std::string>() : fallback;
  };
  auto number = [&](const char* name, int fallback) {
    return vm.count(name) ? parse_int(vm[name].as<std::string>(), std::string("--") + name) : fallback;
  };
  RW_USER_CHECK(vm.count("time"), "'ringwise submit' needs --time HH:MM:SS, the time limit of each job");
  RW_USER_CHECK(cfg.train.resume.empty() || cfg.train.resume == "auto",
                "--resume %s: a submitted run always resumes from the newest checkpoint in its --ckpt-dir (resume = "
                "auto); copy %s there to start from it",
                cfg.train.resume.c_str(), cfg.train.resume.c_str());
  cfg.train.resume = "auto";

  SlurmJobSpec spec;
  spec.nodes = number("nodes", spec.nodes);
  spec.ntasks_per_node = number("ntasks-per-node", spec.ntasks_per_node);
  spec.gpus_per_node = number("gpus-per-node", spec.gpus_per_node);
  spec.time = text("time", "");
  spec.signal_before_s = number("signal-before", spec.signal_before_s);
  spec.partition = text("partition", "");
  spec.account = text("account", "");
  spec.job_name = text("job-name", spec.job_name);
  spec.launcher = text("launcher", spec.launcher);
  const ParallelConfig& p = cfg.parallel;
  const int grid_ranks = p.dp * p.tp * p.cp * p.ep;
  RW_USER_CHECK(spec.nodes * spec.ntasks_per_node == grid_ranks,
                "--nodes %d x --ntasks-per-node %d = %d ranks, but dp x tp x cp x ep = %d x %d x %d x %d = %d",
                spec.nodes, spec.ntasks_per_node, spec.nodes * spec.ntasks_per_node, p.dp, p.tp, p.cp, p.ep,
                grid_ranks);
  // The job may start on another node in another directory: every path it uses is absolute.
  std::error_code ec;
  spec.work_dir = std::filesystem::current_path(ec).string();
  RW_USER_CHECK(!ec, "cannot read the current directory: %s", ec.message().c_str());
  cfg.train.run_dir = std::filesystem::absolute(cfg.train.run_dir).lexically_normal().string();
  spec.run_dir = cfg.train.run_dir;
  spec.config = spec.run_dir + "/config.ini";
  spec.ringwise = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  RW_USER_CHECK(!ec, "cannot find the ringwise executable (/proc/self/exe): %s", ec.message().c_str());
  const std::string script = sbatch_script(spec);
  if (vm.count("dry-run")) {
    std::cout << script;
    return 0;
  }

  std::filesystem::create_directories(spec.run_dir, ec);
  RW_USER_CHECK(!ec, "cannot create run directory %s: %s", spec.run_dir.c_str(), ec.message().c_str());
  std::ostringstream ini;
  write_config_file(ini, cfg);
  write_file(spec.config, ini.str());
  const std::string script_path = spec.run_dir + "/job.sbatch";
  write_file(script_path, script);
  const std::string job_id = sbatch_submit(script_path);
  std::ofstream log(spec.run_dir + "/jobs.log", std::ios::app);
  log << "submitted " << job_id << " at " << now_utc() << "\n";
  RW_USER_CHECK(log.good(), "cannot append to %s/jobs.log", spec.run_dir.c_str());
  std::cout << "submitted Slurm job " << job_id << ": " << script_path << ", output in " << spec.run_dir << "/slurm-"
            << job_id << ".out\n";
  return 0;
}

}  // namespace rw
