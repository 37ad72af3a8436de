// `ringwise inspect` and `ringwise bench io` through the binary: a sound checkpoint is described
// and passes; a truncated file, a non-finite value or a file of another kind fails with one line.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "data/hdf5_checkpoint.h"
#include "tests/ringwise_binary.h"

namespace rw {
namespace {

namespace fs = std::filesystem;

class InspectTest : public test::TempDirTest {
 protected:
  test::RunResult run(const std::vector<std::string>& args) const {
    return test::run_ringwise(args, path("stderr.txt"));
  }

  // A non-zero exit with exactly one "ringwise: ..." line on stderr that contains `mention`.
  void expect_one_line_failure(const std::string& file, const std::string& mention) const {
    const test::RunResult r = run({"inspect", file});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.err.rfind("ringwise: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(file), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(mention), std::string::npos) << r.err;
  }
};

TEST_F(InspectTest, DescribesAndVerifiesATrainedCheckpoint) {
  std::ofstream(path("corpus.txt")) << "pack my box with five dozen liquor jugs\n";
  const test::RunResult train = run({"train", "--preset", "tiny", "--data", path("corpus.txt"), "--steps", "2",
                                     "--seq-len", "16", "--batch-size", "2", "--threads", "1", "--run-dir", path("run")});
  ASSERT_EQ(train.exit_code, 0) << train.err;
  const std::string ckpt = path("run/checkpoints/step_00000002.h5");

  const test::RunResult r = run({"inspect", ckpt});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  for (const char* text : {"step     2 (AdamW step 2)", "d-model = 32", "model.layers.1.mlp.down_proj.weight",
                           "[32, 64]", "float32", "verified", "checksums match"})
    EXPECT_NE(r.out.find(text), std::string::npos) << "no '" << text << "' in:\n" << r.out;
  // The tiny preset's parameter count, computed from its shape: V=256, C=32, 2 layers, 4 heads of
  // 8 with 2 KV heads, F=64, untied head.
  const long long C = 32, V = 256, F = 64, KVD = 2 * 8;
  const long long expected = 2 * V * C + C + 2 * (2 * C + C * C * 2 + 2 * KVD * C + 3 * C * F);
  EXPECT_NE(r.out.find(std::to_string(expected) + " parameters in 21 tensors"), std::string::npos) << r.out;

  // Half of the file: HDF5 notices that it ends early.
  std::ifstream in(ckpt, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::ofstream(path("truncated.h5"), std::ios::binary).write(bytes.data(), bytes.size() / 2);
  expect_one_line_failure(path("truncated.h5"), "truncated");
}

TEST_F(InspectTest, NonFiniteValuesAndOtherFilesFail) {
  std::vector<float> w(12, 0.5f), m(12, 0.0f), v(12, 0.0f);
  v[7] = NAN;
  CheckpointMeta meta;
  meta.step = 3;
  save_checkpoint(path("ckpt"), meta, {{"model.norm.weight", {12}, w.data(), m.data(), v.data()}});
  expect_one_line_failure(path("ckpt/step_00000003.h5"), "'/optimizer/exp_avg_sq/model.norm.weight' holds a non-finite");

  std::ofstream(path("notes.txt")) << "plain text\n";
  expect_one_line_failure(path("notes.txt"), "not an HDF5 file");
  expect_one_line_failure(path("missing.h5"), "does not exist");
}

TEST_F(InspectTest, BenchIoRunsAndCleansUp) {
  const test::RunResult r = run({"bench", "io", "--dir", dir_, "--size-gb", "0.02", "--iters", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* key : {"\"ckpt_save_gbps\":", "\"raw_read_gbps\":", "\"write_ratio\":", "\"read_ratio\":"})
    EXPECT_NE(r.out.find(key), std::string::npos) << r.out;
  // Only the test's own stderr capture is left in the directory.
  for (const fs::directory_entry& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename(), "stderr.txt") << "left behind: " << e.path();
}

}  // namespace
}  // namespace rw
