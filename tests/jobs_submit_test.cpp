// `ringwise submit --dry-run`: the batch script for a multi-node GPU job carries the directives
// asked for, the warning signal and --requeue, and launches `ringwise train` on the saved config;
// bad job options are one-line errors. No Slurm needed (tests/slurm/ submits for real).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/ringwise_binary.h"

namespace rw::test {
namespace {

class SubmitTest : public TempDirTest {
 protected:
  RunResult submit(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"submit", "--preset", "tiny", "--steps", "1000", "--dp", "16", "--run-dir",
                                     path("run")};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_ringwise(args, path("err.txt"));
  }
};

TEST_F(SubmitTest, DryRunForFourGpuNodesHasTheDirectives) {
  const RunResult r = submit({"--nodes", "4", "--ntasks-per-node", "4", "--gpus-per-node", "4", "--time", "1-02:00:00",
                              "--partition", "gpu", "--account", "proj42", "--job-name", "big-run",
                              "--signal-before", "300", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string& line : std::vector<std::string>
       {"#!/bin/bash\n", "#SBATCH --nodes=4\n", "#SBATCH --ntasks-per-node=4\n", "#SBATCH --gpus-per-node=4\n",
        "#SBATCH --time=1-02:00:00\n", "#SBATCH --partition=gpu\n", "#SBATCH --account=proj42\n",
        "#SBATCH --job-name=big-run\n", "#SBATCH --signal=B:USR1@300\n", "#SBATCH --requeue\n",
        "#SBATCH --output=" + path("run") + "/slurm-%j.out\n", "trap 'kill -USR1 $ranks' USR1\n"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << " missing from\n" << r.out;
  EXPECT_NE(r.out.find("srun --mpi=pmix '"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("' train --config '" + path("run") + "/config.ini' &"), std::string::npos) << r.out;
  // Every directive comes before the first command, or sbatch ignores it.
  EXPECT_LT(r.out.rfind("#SBATCH"), r.out.find("\nsrun")) << r.out;
  EXPECT_FALSE(std::filesystem::exists(path("run"))) << "--dry-run must write nothing";
}

TEST_F(SubmitTest, DryRunWithMpirunAndNoGpus) {
  const RunResult r = submit({"--nodes", "2", "--ntasks-per-node", "8", "--time", "00:30:00", "--launcher", "mpirun",
                              "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\nmpirun '"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("--gpus-per-node"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("--partition"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("#SBATCH --signal=B:USR1@120\n"), std::string::npos) << r.out;
}

TEST_F(SubmitTest, BadJobOptionsAreOneLineErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--nodes", "2", "--ntasks-per-node", "4", "--time", "01:00:00"}, "--nodes 2 x --ntasks-per-node 4 = 8 ranks"},
      {{"--nodes", "4", "--ntasks-per-node", "4"}, "needs --time"},
      {{"--nodes", "4", "--ntasks-per-node", "4", "--time", "1:99:00"}, "invalid value '1:99:00' for --time"},
      {{"--nodes", "4", "--ntasks-per-node", "4", "--time", "00:01:00"}, "--signal-before 120 s must be"},
      {{"--nodes", "4", "--ntasks-per-node", "4", "--time", "01:00:00", "--launcher", "ssh"}, "for --launcher"},
      {{"--nodes", "4", "--ntasks-per-node", "4", "--time", "01:00:00", "--resume", "x.h5"}, "--resume x.h5"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.push_back("--dry-run");
    const RunResult r = submit(args);
    EXPECT_EQ(r.exit_code, 2) << c.message;
    EXPECT_NE(r.err.find("ringwise: error: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(path("run")));
}

}  // namespace
}  // namespace rw::test
