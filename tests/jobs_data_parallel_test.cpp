// `ringwise train --dp N` under mpirun against the plain single-process run of the same global
// batch, through the binary: the metrics rank 0 writes must follow the single process's loss and
// gradient-norm curve (relative 1e-5: only the order of float sums differs); bad grids are one
// clear error naming the rank. (ZeRO-1 is compared in-process by dist_data_parallel_test.)
#include <gtest/gtest.h>

#include <string>

#include "tests/ringwise_binary.h"

namespace rw {
namespace {

using test::metrics_curve;
using test::run_command;
using test::RunResult;

class DataParallelTraining : public test::MpiTrainingTest {
 protected:
  // Six steps of the tiny model on `rows` sequences per rank.
  std::string train(int rows, const std::string& run_dir, const std::string& extra = "") const {
    return std::string(RINGWISE_BINARY) + " train --preset tiny --data " + path("corpus.txt") +
           " --steps 6 --warmup-steps 2 --seq-len 32 --threads 1 --batch-size " + std::to_string(rows) +
           " --run-dir " + path(run_dir) + " " + extra;
  }
};

TEST_F(DataParallelTraining, TwoRanksFollowTheSingleProcessCurve) {
  const RunResult single = run_command(train(4, "single"));
  ASSERT_EQ(single.exit_code, 0) << single.out;
  const auto expected = metrics_curve(path("single/metrics.jsonl"));
  ASSERT_EQ(expected.size(), 6u);
  for (const std::string zero : {"0"}) {
    SCOPED_TRACE("--zero " + zero);
    const std::string run_dir = "dp2_zero" + zero;
    const RunResult dp = run_command(mpirun(2) + train(2, run_dir, "--dp 2 --bucket-mb 0.01 --zero " + zero));
    ASSERT_EQ(dp.exit_code, 0) << dp.out;
    // Only rank 0 reports.
    EXPECT_EQ(dp.out.find("done:"), dp.out.rfind("done:")) << dp.out;
    expect_same_curve(run_dir, expected);
  }
}

TEST_F(DataParallelTraining, GridThatDoesNotFitTheRanksIsAnError) {
  const RunResult plain = run_command(train(2, "x", "--dp 2"));
  EXPECT_EQ(plain.exit_code, 2);
  EXPECT_NE(plain.out.find("ringwise: error: dp*tp*cp*ep = 2 but mpirun started 1 ranks"), std::string::npos)
      << plain.out;
  const RunResult mpi = run_command(mpirun(2) + train(2, "y", "--dp 3"));
  EXPECT_NE(mpi.exit_code, 0);
  EXPECT_NE(mpi.out.find("dp*tp*cp*ep = 3 but mpirun started 2 ranks"), std::string::npos) << mpi.out;
  EXPECT_NE(mpi.out.find("ringwise: error: rank "), std::string::npos) << mpi.out;
  const RunResult tp = run_command(train(2, "z", "--tp 3"));
  EXPECT_EQ(tp.exit_code, 2);
  EXPECT_NE(tp.out.find("ringwise: error: --tp 3 must divide --heads 4"), std::string::npos) << tp.out;
}

}  // namespace
}  // namespace rw
