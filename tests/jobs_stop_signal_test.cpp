// SIGUSR1 (Slurm's warning before the time limit) or SIGTERM mid-run: training finishes its step,
// saves a checkpoint and exits with code 75; `--resume auto` then ends with the same losses as a
// run that was never stopped. Outside Slurm nothing is requeued (tests/slurm/ covers that).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/ringwise_binary.h"

extern char** environ;

namespace rw::test {
namespace {

class StopSignalTest : public MpiTrainingTest {
 protected:
  // A few seconds of training, so that a signal after the first reports arrives mid-run.
  std::vector<std::string> training(const std::string& run_dir) const {
    return {"train", "--preset", "tiny", "--data", path("corpus.txt"), "--steps", "120", "--batch-size", "16",
            "--seq-len", "64", "--threads", "1", "--log-every", "1", "--run-dir", path(run_dir)};
  }

  // Starts ringwise with stdout and stderr to `log`; returns its pid.
  pid_t spawn_ringwise(std::vector<std::string> args, const std::string& log) const {
    args.insert(args.begin(), RINGWISE_BINARY);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = -1;
    const int err = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    return err == 0 ? pid : -1;
  }

  static std::string read_file(const std::string& file) {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  void stop_mid_run_and_resume(int signo, const std::string& signal_name) {
    const RunResult whole = run_ringwise(training("whole"), path("whole.err"));
    ASSERT_EQ(whole.exit_code, 0) << whole.err;
    const auto expected = metrics_curve(path("whole/metrics.jsonl"));
    ASSERT_EQ(expected.size(), 120u);

    const pid_t pid = spawn_ringwise(training("run"), path("stopped.log"));
    ASSERT_GT(pid, 0);
    for (int i = 0; i < 600 && metrics_curve(path("run/metrics.jsonl")).size() < 3; ++i) usleep(50 * 1000);
    ASSERT_EQ(kill(pid, signo), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    const std::string log = read_file(path("stopped.log"));
    ASSERT_TRUE(WIFEXITED(status)) << log;
    ASSERT_EQ(WEXITSTATUS(status), 75) << log;
    const size_t at = log.find("stopped after step ");
    ASSERT_NE(at, std::string::npos) << log;
    const int stopped_at = std::atoi(log.c_str() + at + 19);
    EXPECT_GE(stopped_at, 3);
    EXPECT_LT(stopped_at, 120) << "the signal came after the last step";
    EXPECT_NE(log.find("on " + signal_name + ", checkpoint saved; continue with --resume auto"), std::string::npos)
        << log;
    char name[64];
    std::snprintf(name, sizeof name, "run/checkpoints/step_%08d.h5", stopped_at);
    EXPECT_TRUE(std::filesystem::exists(path(name))) << name << "\n" << log;
    EXPECT_EQ(metrics_curve(path("run/metrics.jsonl")).size(), static_cast<size_t>(stopped_at));

    std::vector<std::string> resume = training("run");
    resume.insert(resume.end(), {"--resume", "auto"});
    const RunResult resumed = run_ringwise(resume, path("resumed.err"));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_NE(resumed.out.find(std::string("resumed  from ") + path(name)), std::string::npos) << resumed.out;
    expect_same_curve("run", expected);
  }
};

TEST_F(StopSignalTest, Usr1CheckpointsAndResumeGivesTheSameLosses) { stop_mid_run_and_resume(SIGUSR1, "SIGUSR1"); }

TEST_F(StopSignalTest, TermCheckpointsAndResumeGivesTheSameLosses) { stop_mid_run_and_resume(SIGTERM, "SIGTERM"); }

}  // namespace
}  // namespace rw::test
