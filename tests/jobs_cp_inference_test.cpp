// `ringwise generate` and `ringwise eval` under mpirun with --cp: the same text and prediction
// files as one process (greedy choices are far apart compared with the ~1e-6 relative difference
// of the merged attention, dist_cp_inference_test), and the errors for a wrong rank count.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tests/ringwise_binary.h"

namespace rw::test {
namespace {

class CpInference : public MpiTrainingTest {
 protected:
  std::string checkpoint() {
    const RunResult r = run_ringwise({"train", "--preset", "tiny", "--steps", "1", "--data", path("corpus.txt"),
                                      "--run-dir", path("run")},
                                     path("train_err.txt"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return path("run/checkpoints/step_00000001.h5");
  }
  std::string read(const std::string& file) {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
};

TEST_F(CpInference, GenerateAndEvalMatchOneProcess) {
  const std::string ckpt = checkpoint(), bin = RINGWISE_BINARY;
  const std::string generate =
      bin + " generate --checkpoint " + ckpt + " --prompt 'The quick brown fox' --max-new-tokens 20";
  const RunResult one = run_command(generate);
  ASSERT_EQ(one.exit_code, 0) << one.out;
  ASSERT_GT(one.out.size(), 1u);
  const RunResult two = run_command(mpirun(2) + generate + " --cp 2");
  ASSERT_EQ(two.exit_code, 0) << two.out;
  EXPECT_EQ(two.out, one.out);  // rank 0 alone prints

  const RunResult probes = run_command(bin + " make-probes --kind passkey --lengths 10 --depths 0,1 --output " +
                                       path("probes"));
  ASSERT_EQ(probes.exit_code, 0) << probes.out;
  const std::string eval = bin + " eval --benchmark longbench --data-dir " + path("probes") + " --checkpoint " + ckpt +
                           " --max-length 40 --model-name tiny --output ";
  ASSERT_EQ(run_command(eval + path("pred1")).exit_code, 0);
  const RunResult cp = run_command(mpirun(2) + eval + path("pred2") + " --cp 2");
  ASSERT_EQ(cp.exit_code, 0) << cp.out;
  const std::string preds = read(path("pred1/tiny/passkey.jsonl"));
  EXPECT_FALSE(preds.empty());
  EXPECT_EQ(read(path("pred2/tiny/passkey.jsonl")), preds);
  EXPECT_EQ(read(path("pred2/tiny/result.json")), read(path("pred1/tiny/result.json")));
}

TEST_F(CpInference, RefusesAWrongRankCount) {
  const RunResult r = run_command(std::string(RINGWISE_BINARY) + " generate --checkpoint x.h5 --prompt x --cp 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("--cp 2 but mpirun started 1 ranks"), std::string::npos) << r.out;
  const RunResult s = run_command(std::string(RINGWISE_BINARY) + " eval --benchmark longbench --score-only "
                                  "--datasets passkey --model-name m --cp 2");
  EXPECT_EQ(s.exit_code, 2);
  EXPECT_NE(s.out.find("--score-only generates nothing"), std::string::npos) << s.out;
}

}  // namespace
}  // namespace rw::test
