// `ringwise status RUN_DIR` and `ringwise plot METRICS -o FILE` on a short real run: the status
// names the last step, its loss and the checkpoints; the plot is an SVG or PNG picture drawn from
// every step. Plot needs gnuplot (.ci/install-deps); without it the plot tests are skipped
// outside CI.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/ringwise_binary.h"

namespace rw::test {
namespace {

class StatusPlotTest : public MpiTrainingTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(MpiTrainingTest::SetUp());
    const RunResult r = run_ringwise({"train", "--preset", "tiny", "--data", path("corpus.txt"), "--steps", "12",
                                      "--batch-size", "2", "--seq-len", "32", "--threads", "1", "--save-every", "5",
                                      "--run-dir", path("run")},
                                     path("train.err"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  static std::string read_file(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  void require_gnuplot() {
    if (run_command("command -v gnuplot").exit_code == 0) return;
    if (std::getenv("CI") != nullptr) FAIL() << "gnuplot is missing (.ci/install-deps installs gnuplot-nox)";
    GTEST_SKIP() << "gnuplot is not installed";
  }
};

TEST_F(StatusPlotTest, StatusShowsLastStepLossAndCheckpoints) {
  const auto curve = metrics_curve(path("run/metrics.jsonl"));
  ASSERT_EQ(curve.size(), 12u);
  const RunResult r = run_ringwise({"status", path("run")}, path("status.err"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  char loss[32];
  std::snprintf(loss, sizeof loss, "loss %.4f", curve.back().first);
  EXPECT_NE(r.out.find("last step   12 of 12, " + std::string(loss)), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("checkpoints 3 in " + path("run") + "/checkpoints"), std::string::npos) << r.out;
  for (const char* step : {"step_00000005.h5", "step_00000010.h5", "step_00000012.h5"})
    EXPECT_NE(r.out.find(step), std::string::npos) << r.out;

  const RunResult missing = run_ringwise({"status", path("nowhere")}, path("status.err"));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("run directory " + path("nowhere") + " does not exist"), std::string::npos)
      << missing.err;
}

TEST_F(StatusPlotTest, PlotDrawsSvgAndPng) {
  require_gnuplot();
  const RunResult svg = run_ringwise({"plot", path("run/metrics.jsonl"), "-o", path("loss.svg")}, path("plot.err"));
  ASSERT_EQ(svg.exit_code, 0) << svg.err;
  EXPECT_NE(svg.out.find("plotted 12 points (steps 1-12)"), std::string::npos) << svg.out;
  const std::string picture = read_file(path("loss.svg"));
  EXPECT_NE(picture.find("<svg"), std::string::npos);
  for (const char* label : {"train loss", "learning rate", "tokens/s", "step"})
    EXPECT_NE(picture.find(label), std::string::npos) << label;
  const RunResult png = run_ringwise({"plot", path("run/metrics.jsonl"), "-o", path("loss.png")}, path("plot.err"));
  ASSERT_EQ(png.exit_code, 0) << png.err;
  EXPECT_EQ(read_file(path("loss.png")).substr(0, 8), "\x89PNG\r\n\x1a\n");
  // The scratch data and temporary picture are gone.
  for (const auto& entry : std::filesystem::directory_iterator(dir_))
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
}

TEST_F(StatusPlotTest, PlotRefusesBadInputWithOneLine) {
  std::ofstream(path("bad.jsonl")) << "{\"step\":1,\"loss\":2.5}\nnot json\n";
  const RunResult bad = run_ringwise({"plot", path("bad.jsonl"), "-o", path("x.svg")}, path("plot.err"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find(path("bad.jsonl") + " line 2"), std::string::npos) << bad.err;
  const RunResult gif = run_ringwise({"plot", path("run/metrics.jsonl"), "-o", path("x.gif")}, path("plot.err"));
  EXPECT_EQ(gif.exit_code, 2);
  EXPECT_NE(gif.err.find("must end in .svg or .png"), std::string::npos) << gif.err;
  EXPECT_FALSE(std::filesystem::exists(path("x.svg")));
}

}  // namespace
}  // namespace rw::test
