// `ringwise train --cp N --cp-algo ulysses` under mpirun against the plain single-process run of
// the same batches, through the binary: rank 0's metrics must follow the single process's loss
// and gradient-norm curve (relative 1e-5: the ranks run the same kernel on whole sequences of
// their heads and the gradients are summed over the cp ranks, so only float rounding differs),
// alone and combined with --dp; head counts the ranks cannot share are one clear error.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/ringwise_binary.h"

namespace rw {
namespace {

using test::metrics_curve;
using test::run_command;
using test::RunResult;

class UlyssesTraining : public test::MpiTrainingTest {
 protected:
  // Six steps of the tiny model (4 heads, 2 kv heads) on `rows` sequences of 56 tokens per dp rank.
  std::string train(int rows, const std::string& run_dir, const std::string& extra = "") const {
    return std::string(RINGWISE_BINARY) + " train --preset tiny --data " + path("corpus.txt") +
           " --steps 6 --warmup-steps 2 --threads 1 --attn-block-q 16 --attn-block-k 16 --seq-len 56 --batch-size " +
           std::to_string(rows) + " --run-dir " + path(run_dir) + " " + extra;
  }
};

TEST_F(UlyssesTraining, FollowsTheSingleProcessCurve) {
  const RunResult single = run_command(train(2, "single"));
  ASSERT_EQ(single.exit_code, 0) << single.out;
  const auto expected = metrics_curve(path("single/metrics.jsonl"));
  ASSERT_EQ(expected.size(), 6u);

  const RunResult cp2 = run_command(mpirun(2) + train(2, "cp2", "--cp 2 --cp-algo ulysses"));
  ASSERT_EQ(cp2.exit_code, 0) << cp2.out;
  expect_same_curve("cp2", expected);

  // The same global batch as two dp ranks of one row, each a Ulysses pair.
  const RunResult cp2dp2 = run_command(mpirun(4) + train(1, "cp2dp2", "--cp 2 --dp 2 --cp-algo ulysses"));
  ASSERT_EQ(cp2dp2.exit_code, 0) << cp2dp2.out;
  expect_same_curve("cp2dp2", expected);
}

TEST_F(UlyssesTraining, HeadsTheRanksCannotShareAreAnError) {
  const RunResult bad = run_command(mpirun(4) + train(1, "bad", "--cp 4 --cp-algo ulysses"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("ringwise: error: "), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("--heads 4 and --kv-heads 2 must both be multiples of --cp"), std::string::npos) << bad.out;
  EXPECT_FALSE(std::filesystem::exists(path("bad"))) << "nothing is written on a bad configuration";

  const RunResult unknown = run_command(train(1, "unknown", "--cp-algo spiral"));
  EXPECT_EQ(unknown.exit_code, 2) << unknown.out;
  EXPECT_NE(unknown.out.find("--cp-algo must be ring or ulysses, got 'spiral'"), std::string::npos) << unknown.out;
}

}  // namespace
}  // namespace rw
