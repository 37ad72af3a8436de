// `ringwise submit` on a real one-node Slurm cluster, which tests/slurm/local_cluster.sh starts for
// this binary (SLURM_CONF points at it) and stops afterwards: a 2-rank job trains to the end, and a
// job signalled mid-run checkpoints, requeues itself and resumes to the same losses. The reference
// for both is the same training under plain mpirun, without Slurm.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "tests/ringwise_binary.h"

namespace rw::test {
namespace {

using Curve = std::vector<std::pair<double, double>>;

// Long enough (a few seconds on 2 cores) that a signal sent after the first steps arrives mid-run.
const std::vector<std::string> kTraining = {"--preset", "tiny", "--steps", "150", "--batch-size", "8",
                                            "--grad-accum", "2", "--seq-len", "64", "--threads", "1",
                                            "--dp", "2", "--log-every", "1"};

std::string joined(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& w : words) text += " '" + w + "'";
  return text;
}

std::string field_of(const std::string& text, const std::string& key) {
  const size_t at = text.find(key + "=");
  if (at == std::string::npos) return "";
  const size_t begin = at + key.size() + 1;
  return text.substr(begin, text.find_first_of(" \n", begin) - begin);
}

class SlurmJobTest : public MpiTrainingTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MpiTrainingTest::SetUp());
    ASSERT_NE(std::getenv("SLURM_CONF"), nullptr) << "run me through tests/slurm/local_cluster.sh run DIR";
  }

  std::vector<std::string> training() const {
    std::vector<std::string> args = kTraining;
    args.insert(args.end(), {"--data", path("corpus.txt")});
    return args;
  }

  // The curve of the same training under mpirun outside Slurm, computed once for the suite.
  const Curve& uninterrupted_curve() {
    static Curve curve;
    if (curve.empty()) {
      const RunResult r = run_command(mpirun(2) + RINGWISE_BINARY + " train" + joined(training()) + " --run-dir " +
                                      path("reference"));
      EXPECT_EQ(r.exit_code, 0) << r.out;
      curve = metrics_curve(path("reference/metrics.jsonl"));
    }
    return curve;
  }

  // Submits the training to the cluster; returns the job id ringwise printed.
  std::string submit(const std::string& run_dir, const std::vector<std::string>& job_options) {
    std::vector<std::string> args = {"submit"};
    const std::vector<std::string> train = training();
    args.insert(args.end(), train.begin(), train.end());
    args.insert(args.end(), {"--run-dir", path(run_dir), "--nodes", "1", "--ntasks-per-node", "2", "--time",
                             "00:10:00", "--job-name", "ringwise-test"});
    args.insert(args.end(), job_options.begin(), job_options.end());
    const RunResult r = run_ringwise(args, path("submit.err"));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    const std::string prefix = "submitted Slurm job ";
    const size_t at = r.out.find(prefix);
    if (at == std::string::npos) return "";
    return r.out.substr(at + prefix.size(), r.out.find(':', at) - at - prefix.size());
  }

  static std::string show_job(const std::string& id) { return run_command("scontrol show job " + id).out; }

  // Polls until the job reaches a final state (through requeues); returns that state, or "TIMEOUT
  // waiting" after `seconds`.
  static std::string wait_until_finished(const std::string& id, int seconds) {
    for (int i = 0; i < seconds * 5; ++i) {
      const std::string state = field_of(show_job(id), "JobState");
      for (const char* final_state : {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"})
        if (state == final_state) return state;
      usleep(200 * 1000);
    }
    return "TIMEOUT waiting";
  }

  // Waits until the run in `run_dir` has reported 3 steps, so that a signal arrives mid-run.
  void wait_for_three_steps(const std::string& run_dir, const std::string& id) const {
    size_t reported = 0;
    for (int i = 0; i < 600 && reported < 3; ++i) {
      usleep(100 * 1000);
      reported = metrics_curve(path(run_dir + "/metrics.jsonl")).size();
    }
    ASSERT_GE(reported, 3u) << show_job(id) << slurm_output(run_dir, id);
  }

  std::string slurm_output(const std::string& run_dir, const std::string& id) const {
    return run_command("cat " + path(run_dir + "/slurm-" + id + ".out")).out;
  }
};

TEST_F(SlurmJobTest, SubmittedTwoRankJobTrainsToTheEnd) {
  const Curve& expected = uninterrupted_curve();
  ASSERT_EQ(expected.size(), 150u);
  const std::string id = submit("run", {});
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(wait_until_finished(id, 90), "COMPLETED") << show_job(id) << slurm_output("run", id);
  EXPECT_NE(slurm_output("run", id).find("rank 0 of 2 (srun"), std::string::npos) << slurm_output("run", id);
  expect_same_curve("run", expected);
  const RunResult status = run_ringwise({"status", path("run")}, path("status.err"));
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("last step   150 of 150"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("started " + id + " restart 0"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("ended " + id + " with exit code 0"), std::string::npos) << status.out;
}

// Slurm's warning before the time limit, sent by hand: scancel --batch signals the batch shell
// only, as --signal=B:USR1 does.
TEST_F(SlurmJobTest, SignalledJobCheckpointsRequeuesAndResumesToTheSameLosses) {
  const Curve& expected = uninterrupted_curve();
  ASSERT_EQ(expected.size(), 150u);
  const std::string id = submit("run", {"--launcher", "mpirun"});
  ASSERT_FALSE(id.empty());
  ASSERT_NO_FATAL_FAILURE(wait_for_three_steps("run", id));
  const RunResult signal = run_command("scancel --signal=USR1 --batch " + id);
  ASSERT_EQ(signal.exit_code, 0) << signal.out;
  ASSERT_EQ(wait_until_finished(id, 90), "COMPLETED") << show_job(id) << slurm_output("run", id);
  const std::string out = slurm_output("run", id);
  EXPECT_EQ(field_of(show_job(id), "Restarts"), "1") << show_job(id) << out;
  EXPECT_NE(out.find("on SIGUSR1, checkpoint saved"), std::string::npos) << out;
  EXPECT_NE(out.find("requeueing Slurm job " + id), std::string::npos) << out;
  EXPECT_NE(out.find("resumed  from"), std::string::npos) << out;
  expect_same_curve("run", expected);
}

// scancel ends a job with SIGTERM: the run saves a checkpoint but must not requeue, or the job
// could never be cancelled.
TEST_F(SlurmJobTest, CancelledJobSavesACheckpointAndStaysCancelled) {
  const std::string id = submit("run", {});
  ASSERT_FALSE(id.empty());
  ASSERT_NO_FATAL_FAILURE(wait_for_three_steps("run", id));
  const RunResult cancel = run_command("scancel " + id);
  ASSERT_EQ(cancel.exit_code, 0) << cancel.out;
  ASSERT_EQ(wait_until_finished(id, 60), "CANCELLED") << show_job(id) << slurm_output("run", id);
  sleep(2);  // a wrong requeue would come from the ranks' last moments
  EXPECT_EQ(field_of(show_job(id), "JobState"), "CANCELLED") << show_job(id);
  EXPECT_EQ(field_of(show_job(id), "Restarts"), "0") << show_job(id);
  const std::string out = slurm_output("run", id);
  EXPECT_NE(out.find("on SIGTERM, checkpoint saved; continue with --resume auto"), std::string::npos) << out;
}

}  // namespace
}  // namespace rw::test
