// A checkpoint holds logical tensors (the ZeRO-1 moments gathered before saving), so a run may
// resume on another layout of ranks: saved at step 5 by dp2 x cp2, resumed by one process, by
// cp2 and by tp2; saved by dp2 with ZeRO-1, resumed by one process; saved by one process,
// resumed by dp2 with ZeRO-1. Every resumed run's losses for steps 6..10 must follow one uninterrupted single-process
// run to step 10 (relative 1e-5: the layouts differ only in the order of float sums), which also
// checks that the step counts, the schedule and the batches carried over.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "tests/ringwise_binary.h"

namespace rw {
namespace {

using test::run_command;
using test::RunResult;

// step -> loss of every line of a metrics.jsonl.
std::map<int, double> losses_by_step(const std::string& metrics) {
  std::map<int, double> losses;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    auto number_after = [&](const std::string& key) {
      const size_t at = line.find("\"" + key + "\":");
      return at == std::string::npos ? -1.0 : std::atof(line.c_str() + at + key.size() + 3);
    };
    losses[static_cast<int>(number_after("step"))] = number_after("loss");
  }
  return losses;
}

class ReshardedResume : public test::MpiTrainingTest {
 protected:
  // Ten steps of the tiny model, a global batch of 2 sequences of 56 tokens over `dp` ranks, saving
  // at step 5 and 10.
  std::string train(int dp, const std::string& run_dir, const std::string& extra = "") const {
    return std::string(RINGWISE_BINARY) + " train --preset tiny --data " + path("corpus.txt") +
           " --steps 10 --warmup-steps 2 --save-every 5 --keep-last 0 --threads 1 --attn-block-q 16" +
           " --attn-block-k 16 --seq-len 56 --batch-size " + std::to_string(2 / dp) + " --dp " + std::to_string(dp) +
           " --run-dir " + path(run_dir) + " " + extra;
  }
  std::string step5(const std::string& run_dir) const { return path(run_dir + "/checkpoints/step_00000005.h5"); }

  void expect_follows(const std::string& run_dir, const std::map<int, double>& expected) const {
    const std::map<int, double> got = losses_by_step(path(run_dir + "/metrics.jsonl"));
    for (int step = 6; step <= 10; ++step) {
      ASSERT_TRUE(got.count(step)) << run_dir << " has no step " << step;
      EXPECT_NEAR(got.at(step), expected.at(step), 1e-5 * expected.at(step)) << run_dir << " step " << step;
    }
  }
};

TEST_F(ReshardedResume, FollowsTheUninterruptedRun) {
  const RunResult single = run_command(train(1, "single"));
  ASSERT_EQ(single.exit_code, 0) << single.out;
  const std::map<int, double> expected = losses_by_step(path("single/metrics.jsonl"));
  ASSERT_EQ(expected.size(), 10u);

  const RunResult dp2cp2 = run_command(mpirun(4) + train(2, "dp2cp2", "--cp 2"));
  ASSERT_EQ(dp2cp2.exit_code, 0) << dp2cp2.out;
  const RunResult to_single = run_command(train(1, "dp2cp2_to_single", "--resume " + step5("dp2cp2")));
  ASSERT_EQ(to_single.exit_code, 0) << to_single.out;
  expect_follows("dp2cp2_to_single", expected);
  const RunResult to_cp2 = run_command(mpirun(2) + train(1, "dp2cp2_to_cp2", "--cp 2 --resume " + step5("dp2cp2")));
  ASSERT_EQ(to_cp2.exit_code, 0) << to_cp2.out;
  expect_follows("dp2cp2_to_cp2", expected);
  const RunResult to_tp2 = run_command(mpirun(2) + train(1, "dp2cp2_to_tp2", "--tp 2 --resume " + step5("dp2cp2")));
  ASSERT_EQ(to_tp2.exit_code, 0) << to_tp2.out;
  expect_follows("dp2cp2_to_tp2", expected);

  const RunResult zero = run_command(mpirun(2) + train(2, "zero", "--zero 1"));
  ASSERT_EQ(zero.exit_code, 0) << zero.out;
  const RunResult zero_to_single = run_command(train(1, "zero_to_single", "--resume " + step5("zero")));
  ASSERT_EQ(zero_to_single.exit_code, 0) << zero_to_single.out;
  expect_follows("zero_to_single", expected);

  const RunResult single_to_zero =
      run_command(mpirun(2) + train(2, "single_to_zero", "--zero 1 --resume " + step5("single")));
  ASSERT_EQ(single_to_zero.exit_code, 0) << single_to_zero.out;
  expect_follows("single_to_zero", expected);
}

}  // namespace
}  // namespace rw
