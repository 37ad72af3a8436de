// `ringwise train --bpt-block N` through the binary: the blockwise MLPs and loss follow the
// unblocked run's loss and gradient-norm curve (relative 1e-5: only the order in which weight
// gradients add the blocks differs), alone and under --cp 2; the header says so; a negative
// block is one clear error that writes nothing; `bench bpt` prints a row per length and mode.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/ringwise_binary.h"

namespace rw {
namespace {

using test::metrics_curve;
using test::run_command;
using test::RunResult;

class BptTraining : public test::MpiTrainingTest {
 protected:
  // Four steps of the tiny model on 2 sequences of 48 tokens: 96 rows, or 48 per cp rank.
  std::string train(const std::string& run_dir, const std::string& extra) const {
    return std::string(RINGWISE_BINARY) + " train --preset tiny --data " + path("corpus.txt") +
           " --steps 4 --warmup-steps 1 --threads 1 --seq-len 48 --batch-size 2 --run-dir " + path(run_dir) + " " +
           extra;
  }
};

TEST_F(BptTraining, FollowsTheUnblockedCurve) {
  const RunResult plain = run_command(train("plain", ""));
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_NE(plain.out.find("MLPs and loss unblocked"), std::string::npos) << plain.out;
  const auto expected = metrics_curve(path("plain/metrics.jsonl"));
  ASSERT_EQ(expected.size(), 4u);

  // Blocks of 7 leave a partial block of the 96 (and of the 48) rows.
  const RunResult bpt = run_command(train("bpt", "--bpt-block 7"));
  ASSERT_EQ(bpt.exit_code, 0) << bpt.out;
  EXPECT_NE(bpt.out.find("MLPs and loss in blocks of 7 tokens (BPT)"), std::string::npos) << bpt.out;
  expect_same_curve("bpt", expected);

  const RunResult cp2 = run_command(mpirun(2) + train("bpt_cp2", "--cp 2 --bpt-block 7"));
  ASSERT_EQ(cp2.exit_code, 0) << cp2.out;
  expect_same_curve("bpt_cp2", expected);
}

TEST_F(BptTraining, NegativeBlockIsAnError) {
  const RunResult bad = run_command(train("bad", "--bpt-block -3"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.out.find("ringwise: error: --bpt-block must not be negative (0 = off), got -3"), std::string::npos)
      << bad.out;
  EXPECT_FALSE(std::filesystem::exists(path("bad"))) << "nothing is written on a bad configuration";
}

TEST_F(BptTraining, BenchPrintsARowPerLengthAndMode) {
  const RunResult bench =
      run_command(std::string(RINGWISE_BINARY) + " bench bpt --preset tiny --seq 32,64 --bpt-block 16 --threads 1");
  ASSERT_EQ(bench.exit_code, 0) << bench.out;
  for (const char* row : {"\n      32      0 ", "\n      32     16 ", "\n      64      0 ", "\n      64     16 "})
    EXPECT_NE(bench.out.find(row), std::string::npos) << row << " in\n" << bench.out;
}

}  // namespace
}  // namespace rw
