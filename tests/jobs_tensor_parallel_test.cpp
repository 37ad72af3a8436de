// `ringwise train --tp N` under mpirun against the plain single-process run of the same batches,
// through the binary: rank 0's metrics must follow the single process's loss and gradient-norm
// curve (relative 1e-5: the tp ranks sum partial products the single process sums inside one
// GEMM, so only float rounding differs), alone and combined with --dp and --cp. Checkpoints hold
// logical tensors, so a run saved at one grid resumes at another (tp2 -> tp1, tp1 -> tp2,
// dp2 x cp2 -> tp2) and continues the uninterrupted curve. A --tp that does not divide the heads
// is one clear error naming --tp and --kv-heads.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "tests/ringwise_binary.h"

namespace rw {
namespace {

using test::metrics_curve;
using test::run_command;
using test::RunResult;

constexpr int kSteps = 10;

class TensorParallelTraining : public test::MpiTrainingTest {
 protected:
  // Ten steps of the tiny model (4 heads, 2 KV heads, vocab 256) on `rows` sequences per dp rank.
  std::string train(int rows, const std::string& run_dir, const std::string& extra = "") const {
    return std::string(RINGWISE_BINARY) + " train --preset tiny --data " + path("corpus.txt") + " --steps " +
           std::to_string(kSteps) + " --warmup-steps 2 --seq-len 32 --threads 1 --attn-block-q 8 --attn-block-k 8" +
           " --batch-size " + std::to_string(rows) + " --run-dir " + path(run_dir) + " " + extra;
  }
  // `run_dir`'s checkpoint after step 5 (runs save with --save-every 5).
  std::string step5(const std::string& run_dir) const { return path(run_dir + "/checkpoints/step_00000005.h5"); }
};

TEST_F(TensorParallelTraining, FollowsTheSingleProcessCurveAndReshardsCheckpoints) {
  const RunResult single = run_command(train(2, "single", "--save-every 5"));
  ASSERT_EQ(single.exit_code, 0) << single.out;
  const auto expected = metrics_curve(path("single/metrics.jsonl"));
  ASSERT_EQ(expected.size(), static_cast<size_t>(kSteps));

  const RunResult tp2 = run_command(mpirun(2) + train(2, "tp2", "--tp 2 --save-every 5"));
  ASSERT_EQ(tp2.exit_code, 0) << tp2.out;
  EXPECT_EQ(tp2.out.find("done:"), tp2.out.rfind("done:")) << tp2.out;  // only rank 0 reports
  expect_same_curve("tp2", expected);

  // The same global batch as two dp ranks of one row, each a tp pair; and tp pairs that split
  // every sequence over two cp ranks.
  const RunResult tp2dp2 = run_command(mpirun(4) + train(1, "tp2dp2", "--tp 2 --dp 2 --zero 1"));
  ASSERT_EQ(tp2dp2.exit_code, 0) << tp2dp2.out;
  expect_same_curve("tp2dp2", expected);
  const RunResult tp2cp2 = run_command(mpirun(4) + train(2, "tp2cp2", "--tp 2 --cp 2 --save-every 5"));
  ASSERT_EQ(tp2cp2.exit_code, 0) << tp2cp2.out;
  expect_same_curve("tp2cp2", expected);

  // Resharded resumes from step 5 continue the uninterrupted curve.
  const RunResult to_tp1 = run_command(train(2, "tp2_to_tp1", "--resume " + step5("tp2")));
  ASSERT_EQ(to_tp1.exit_code, 0) << to_tp1.out;
  expect_same_tail("tp2_to_tp1", expected, kSteps - 5);
  const RunResult to_tp2 = run_command(mpirun(2) + train(2, "tp1_to_tp2", "--tp 2 --resume " + step5("single")));
  ASSERT_EQ(to_tp2.exit_code, 0) << to_tp2.out;
  expect_same_tail("tp1_to_tp2", expected, kSteps - 5);
  const RunResult from_cp = run_command(mpirun(2) + train(2, "tp2cp2_to_tp2", "--tp 2 --resume " + step5("tp2cp2")));
  ASSERT_EQ(from_cp.exit_code, 0) << from_cp.out;
  expect_same_tail("tp2cp2_to_tp2", expected, kSteps - 5);
}

TEST_F(TensorParallelTraining, TpThatDoesNotDivideTheHeadsIsAnError) {
  const RunResult bad = run_command(mpirun(4) + train(2, "bad", "--tp 4"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("ringwise: error: --tp 4 must divide --kv-heads 2"), std::string::npos) << bad.out;
  EXPECT_FALSE(std::filesystem::exists(path("bad"))) << "nothing is written on a bad configuration";
}

}  // namespace
}  // namespace rw
