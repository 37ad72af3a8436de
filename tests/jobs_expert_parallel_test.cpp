// `ringwise train --ep 2` (MoE experts sharded over two ranks) under mpirun against the plain
// single-process run of the same global batch, through the binary: rank 0's metrics (loss, gradient
// norm, aux loss, dropped assignments) must follow the single process's for 10 steps (relative
// 1e-5: only the order of float sums differs), and the checkpoint must hold every expert. The same
// for MoE with --cp 2 and with --tp 2 --ep 2, and a resume from the latter.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tests/ringwise_binary.h"

namespace rw {
namespace {

using test::metrics_curve;
using test::run_command;
using test::RunResult;

class ExpertParallelTraining : public test::MpiTrainingTest {
 protected:
  // Ten steps of a tiny MoE model (4 experts, top-2, capacity drops at the default `capacity`) on
  // `rows` sequences per rank.
  std::string train(int rows, const std::string& run_dir, const std::string& extra = "",
                    const std::string& capacity = "1.0") const {
    return std::string(RINGWISE_BINARY) + " train --preset tiny --data " + path("corpus.txt") +
           " --moe-experts 4 --moe-capacity-factor " + capacity + " --moe-aux-coef 0.1 --steps 10 --warmup-steps 2" +
           " --seq-len 32 --threads 1 --batch-size " + std::to_string(rows) + " --run-dir " + path(run_dir) + " " +
           extra;
  }
  std::string read(const std::string& name) const {
    std::ifstream in(path(name));
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
};

TEST_F(ExpertParallelTraining, TwoRanksFollowTheSingleProcessCurve) {
  const RunResult single = run_command(train(4, "single"));
  ASSERT_EQ(single.exit_code, 0) << single.out;
  const auto expected = metrics_curve(path("single/metrics.jsonl"));
  ASSERT_EQ(expected.size(), 10u);
  const RunResult ep = run_command(mpirun(2) + train(2, "ep2", "--ep 2"));
  ASSERT_EQ(ep.exit_code, 0) << ep.out;
  expect_same_curve("ep2", expected);
  // The MoE metrics are there, and the same: the ep group routes its tokens together.
  const std::string want = read("single/metrics.jsonl"), got = read("ep2/metrics.jsonl");
  ASSERT_NE(want.find("\"moe_aux_loss\":"), std::string::npos) << want;
  auto field = [](const std::string& text, const std::string& key) {
    std::string values;
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + 1))
      values += text.substr(at, text.find_first_of(",}", at) - at) + " ";
    return values;
  };
  EXPECT_EQ(field(got, "\"moe_dropped\":"), field(want, "\"moe_dropped\":"));
  // Rank 0 saved every expert, not only its own: the checkpoint inspects as sound and names expert 3.
  const RunResult inspect = run_command(std::string(RINGWISE_BINARY) + " inspect " +
                                        path("ep2/checkpoints/step_00000010.h5"));
  EXPECT_EQ(inspect.exit_code, 0) << inspect.out;
  EXPECT_NE(inspect.out.find("model.layers.1.mlp.experts.3.down_proj.weight"), std::string::npos) << inspect.out;
}

// MoE under cp (at a capacity that drops nothing, since cp fills capacity per rank) and under
// tp x ep follows the single process; a checkpoint of tp2 x ep2 resumes in one process on the
// same curve (every tp shard and every ep rank's experts gathered).
TEST_F(ExpertParallelTraining, ContextAndTensorParallelFollowTheSingleProcessCurve) {
  const RunResult single = run_command(train(4, "single", "", "4"));
  ASSERT_EQ(single.exit_code, 0) << single.out;
  const auto expected = metrics_curve(path("single/metrics.jsonl"));
  ASSERT_EQ(expected.size(), 10u);
  const RunResult cp2 = run_command(mpirun(2) + train(4, "cp2", "--cp 2", "4"));
  ASSERT_EQ(cp2.exit_code, 0) << cp2.out;
  expect_same_curve("cp2", expected);
  const RunResult tp2ep2 = run_command(mpirun(4) + train(2, "tp2ep2", "--tp 2 --ep 2 --save-every 5", "4"));
  ASSERT_EQ(tp2ep2.exit_code, 0) << tp2ep2.out;
  expect_same_curve("tp2ep2", expected);
  const RunResult resumed = run_command(
      train(4, "tp2ep2_to_single", "--resume " + path("tp2ep2/checkpoints/step_00000005.h5"), "4"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.out;
  expect_same_tail("tp2ep2_to_single", expected, 5);
}

TEST_F(ExpertParallelTraining, BadExpertGridsAreOneClearError) {
  const RunResult dense = run_command(std::string(RINGWISE_BINARY) + " train --preset tiny --ep 2 --steps 1");
  EXPECT_EQ(dense.exit_code, 2);
  EXPECT_NE(dense.out.find("ringwise: error: --ep 2 needs an MoE model (--moe-experts)"), std::string::npos)
      << dense.out;
  const RunResult uneven = run_command(train(2, "x", "--ep 3"));
  EXPECT_EQ(uneven.exit_code, 2);
  EXPECT_NE(uneven.out.find("ringwise: error: --ep 3 must divide --moe-experts 4"), std::string::npos) << uneven.out;
  const RunResult topk = run_command(train(2, "y", "--moe-top-k 5"));
  EXPECT_EQ(topk.exit_code, 2);
  EXPECT_NE(topk.out.find("ringwise: error: --moe-top-k 5 must be between 1 and --moe-experts 4"), std::string::npos)
      << topk.out;
}

}  // namespace
}  // namespace rw
