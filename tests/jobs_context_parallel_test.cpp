// `ringwise train --cp N` under mpirun against the plain single-process run of the same batches,
// through the binary: rank 0's metrics must follow the single process's loss and gradient-norm
// curve (relative 1e-5: ring attention regroups the softmax sums and the gradients are summed over
// the cp ranks, so only float rounding differs), alone and combined with --dp; a sequence the
// zigzag layout cannot cut is one clear error naming --seq-len and --cp.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/ringwise_binary.h"

namespace rw {
namespace {

using test::metrics_curve;
using test::run_command;
using test::RunResult;

class ContextParallelTraining : public test::MpiTrainingTest {
 protected:
  // Six steps of the tiny model (4 heads) on `rows` sequences of `seq` tokens per dp rank.
  std::string train(int rows, int seq, const std::string& run_dir, const std::string& extra = "") const {
    return std::string(RINGWISE_BINARY) + " train --preset tiny --data " + path("corpus.txt") +
           " --steps 6 --warmup-steps 2 --threads 1 --attn-block-q 16 --attn-block-k 16 --seq-len " +
           std::to_string(seq) + " --batch-size " + std::to_string(rows) + " --run-dir " + path(run_dir) + " " + extra;
  }
};

// 56 tokens: zigzag chunks of 14 (cp 2) and 7 (cp 4), not whole 16-token attention tiles.
TEST_F(ContextParallelTraining, FollowsTheSingleProcessCurve) {
  const RunResult single = run_command(train(2, 56, "single"));
  ASSERT_EQ(single.exit_code, 0) << single.out;
  const auto expected = metrics_curve(path("single/metrics.jsonl"));
  ASSERT_EQ(expected.size(), 6u);

  const RunResult cp2 = run_command(mpirun(2) + train(2, 56, "cp2", "--cp 2"));
  ASSERT_EQ(cp2.exit_code, 0) << cp2.out;
  EXPECT_EQ(cp2.out.find("done:"), cp2.out.rfind("done:")) << cp2.out;  // only rank 0 reports
  expect_same_curve("cp2", expected);

  const RunResult cp4 = run_command(mpirun(4) + train(2, 56, "cp4", "--cp 4"));
  ASSERT_EQ(cp4.exit_code, 0) << cp4.out;
  expect_same_curve("cp4", expected);

  // The same global batch as two dp ranks of one row, each a cp pair.
  const RunResult cp2dp2 = run_command(mpirun(4) + train(1, 56, "cp2dp2", "--cp 2 --dp 2"));
  ASSERT_EQ(cp2dp2.exit_code, 0) << cp2dp2.out;
  expect_same_curve("cp2dp2", expected);
}

TEST_F(ContextParallelTraining, SequenceTheZigzagCannotCutIsAnError) {
  const RunResult bad = run_command(mpirun(2) + train(1, 30, "bad", "--cp 2"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("ringwise: error: "), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("--seq-len 30 must be divisible by 2 * --cp = 4"), std::string::npos) << bad.out;
  EXPECT_FALSE(std::filesystem::exists(path("bad"))) << "nothing is written on a bad configuration";
}

}  // namespace
}  // namespace rw
