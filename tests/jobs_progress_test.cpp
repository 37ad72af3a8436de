// ProgressReporter: the JSONL metrics file (one object per report, the documented keys, values that
// parse back to what was reported) and the two terminal views (plain lines for pipes and files, a
// live line for terminals).
#include "jobs/progress.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Steps of one second each, from a loss of 5 falling by 0.25 a step.
rw::StepMetrics metrics_at(int step, int total) {
  rw::StepMetrics m;
  m.step = step;
  m.total_steps = total;
  m.loss = static_cast<float>(5.0 - 0.25 * step);
  m.lr = 1e-3;
  m.grad_norm = 1.25;
  m.tokens_per_s = 2048;
  m.mfu = 0.412;
  m.elapsed_s = step;
  return m;
}

using ProgressTest = rw::test::TempDirTest;

TEST_F(ProgressTest, MetricsFileHasOneObjectPerReportWithTheDocumentedKeys) {
  const std::string file = path("run/deeper/metrics.jsonl");  // parent directories do not exist yet
  rw::StepMetrics last;
  {
    testing::internal::CaptureStdout();
    rw::ProgressReporter reporter(file, 3, /*interactive=*/false);
    EXPECT_TRUE(fs::exists(file));
    for (int step = 1; step <= 3; ++step) {
      last = metrics_at(step, 3);
      reporter.report(last);
      // Flushed each line: a killed run keeps every step it reported.
      EXPECT_EQ(read_lines(file).size(), static_cast<size_t>(step));
    }
    reporter.finish();
    testing::internal::GetCapturedStdout();
  }
  std::vector<std::string> lines = read_lines(file);
  ASSERT_EQ(lines.size(), 3u);
  const std::set<std::string> keys = {"step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "elapsed_s"};
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    json j = json::parse(lines[i]);  // throws (fails the test) on anything but one JSON value
    ASSERT_TRUE(j.is_object());
    std::set<std::string> got;
    for (auto it = j.begin(); it != j.end(); ++it) got.insert(it.key());
    EXPECT_EQ(got, keys);
    const rw::StepMetrics want = metrics_at(static_cast<int>(i) + 1, 3);
    ASSERT_TRUE(j["step"].is_number_integer());
    EXPECT_EQ(j["step"].get<int>(), want.step);
    // A float loss comes back bit for bit; the rest exactly enough for plots.
    EXPECT_EQ(static_cast<float>(j["loss"].get<double>()), static_cast<float>(want.loss));
    EXPECT_DOUBLE_EQ(j["lr"].get<double>(), want.lr);
    EXPECT_DOUBLE_EQ(j["grad_norm"].get<double>(), want.grad_norm);
    EXPECT_DOUBLE_EQ(j["tokens_per_s"].get<double>(), want.tokens_per_s);
    EXPECT_DOUBLE_EQ(j["mfu"].get<double>(), want.mfu);
    EXPECT_DOUBLE_EQ(j["elapsed_s"].get<double>(), want.elapsed_s);
  }
}

TEST_F(ProgressTest, LossIsWrittenWithFullFloatPrecision) {
  const std::string file = path("metrics.jsonl");
  const float loss = 5.54517746f;  // ~ln(256): needs all nine digits
  {
    testing::internal::CaptureStdout();
    rw::ProgressReporter reporter(file, 1, false);
    rw::StepMetrics m = metrics_at(1, 1);
    m.loss = loss;
    m.lr = 3.0000001e-4;
    reporter.report(m);
    testing::internal::GetCapturedStdout();
  }
  json j = json::parse(read_lines(file).at(0));
  EXPECT_EQ(static_cast<float>(j["loss"].get<double>()), loss);
  EXPECT_EQ(static_cast<float>(j["lr"].get<double>()), static_cast<float>(3.0000001e-4));
}

TEST_F(ProgressTest, NonFiniteValuesAreJsonNull) {
  const std::string file = path("metrics.jsonl");
  {
    testing::internal::CaptureStdout();
    rw::ProgressReporter reporter(file, 2, false);
    rw::StepMetrics m = metrics_at(1, 2);
    m.loss = NAN;
    m.grad_norm = INFINITY;
    reporter.report(m);
    testing::internal::GetCapturedStdout();
  }
  json j = json::parse(read_lines(file).at(0));
  EXPECT_TRUE(j["loss"].is_null());
  EXPECT_TRUE(j["grad_norm"].is_null());
  EXPECT_TRUE(j["lr"].is_number());
}

TEST_F(ProgressTest, ExistingMetricsFileIsTruncated) {
  const std::string file = path("metrics.jsonl");
  std::ofstream(file) << "{\"old\":1}\n{\"old\":2}\n";
  {
    testing::internal::CaptureStdout();
    rw::ProgressReporter reporter(file, 5, false);
    reporter.report(metrics_at(1, 5));
    testing::internal::GetCapturedStdout();
  }
  std::vector<std::string> lines = read_lines(file);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json::parse(lines[0])["step"], 1);
}

// A run resumed from the checkpoint of step 3 keeps the history up to step 3, drops the steps
// after it (they are trained again) and appends.
TEST_F(ProgressTest, ResumedRunKeepsHistoryUpToItsStepAndAppends) {
  const std::string file = path("metrics.jsonl");
  {
    testing::internal::CaptureStdout();
    rw::ProgressReporter first(file, 6, false);
    for (int step = 1; step <= 5; ++step) first.report(metrics_at(step, 6));
    testing::internal::GetCapturedStdout();
  }
  {
    testing::internal::CaptureStdout();
    rw::ProgressReporter resumed(file, 6, false, 3);
    for (int step = 4; step <= 6; ++step) resumed.report(metrics_at(step, 6));
    testing::internal::GetCapturedStdout();
  }
  std::vector<std::string> lines = read_lines(file);
  ASSERT_EQ(lines.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(json::parse(lines[i])["step"], i + 1) << lines[i];
  EXPECT_FALSE(fs::exists(file + ".tmp"));
}

TEST_F(ProgressTest, EmptyPathWritesNoFile) {
  testing::internal::CaptureStdout();
  {
    rw::ProgressReporter reporter("", 2, false);
    reporter.report(metrics_at(1, 2));
    reporter.finish();
  }
  EXPECT_TRUE(contains(testing::internal::GetCapturedStdout(), "step"));
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(ProgressTest, UncreatableMetricsFileIsAUserErrorNamingThePath) {
  const std::string regular = path("plain_file");
  std::ofstream(regular) << "not a directory\n";
  // Its directory would have to be created inside a regular file.
  const std::string under_file = regular + "/sub/metrics.jsonl";
  try {
    rw::ProgressReporter reporter(under_file, 10, false);
    FAIL() << "no error for " << under_file;
  } catch (const rw::UserError& e) {
    EXPECT_TRUE(contains(e.what(), regular)) << e.what();
  }
  // Directly inside a regular file.
  EXPECT_THROW(rw::ProgressReporter(regular + "/metrics.jsonl", 10, false), rw::UserError);
  // The path is an existing directory.
  try {
    rw::ProgressReporter reporter(dir_, 10, false);
    FAIL() << "no error for " << dir_;
  } catch (const rw::UserError& e) {
    EXPECT_TRUE(contains(e.what(), dir_)) << e.what();
    EXPECT_TRUE(contains(e.what(), "metrics")) << e.what();
  }
}

TEST_F(ProgressTest, PlainLinesOnePerReport) {
  testing::internal::CaptureStdout();
  {
    rw::ProgressReporter reporter("", 10, /*interactive=*/false);
    for (int step = 1; step <= 3; ++step) reporter.report(metrics_at(step, 10));
    reporter.finish();
  }
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_FALSE(contains(out, "\r"));
  EXPECT_FALSE(contains(out, "\x1b"));
  std::vector<std::string> lines = split_lines(out);
  ASSERT_EQ(lines.size(), 3u) << out;
  for (int i = 0; i < 3; ++i) {
    const std::string& line = lines[i];
    SCOPED_TRACE(line);
    const int step = i + 1;
    EXPECT_EQ(line.rfind("step ", 0), 0u);
    EXPECT_TRUE(contains(line, std::to_string(step) + "/10"));
    EXPECT_TRUE(contains(line, rw::format("loss %.4f", 5.0 - 0.25 * step)));
    EXPECT_TRUE(contains(line, "norm 1.25"));
    EXPECT_TRUE(contains(line, "lr 1.00e-03"));
    EXPECT_TRUE(contains(line, "1000 ms"));   // one second per step
    EXPECT_TRUE(contains(line, "2048 tok/s"));
    EXPECT_TRUE(contains(line, "MFU 41.2%"));
    EXPECT_TRUE(contains(line, rw::format("ETA 0m%02ds", 10 - step)));  // 1 s/step, 10 - step to go
    // The loss parses back from the line with sscanf.
    float loss = 0;
    ASSERT_EQ(std::sscanf(line.c_str() + line.find("loss"), "loss %f", &loss), 1);
    EXPECT_NEAR(loss, 5.0 - 0.25 * step, 1e-4);
  }
}

TEST_F(ProgressTest, PlainLinesShowShortStepsWithADecimal) {
  testing::internal::CaptureStdout();
  {
    rw::ProgressReporter reporter("", 40000, false);
    rw::StepMetrics m = metrics_at(1, 40000);
    m.elapsed_s = 0.0042;
    reporter.report(m);
    m.step = 2;
    m.elapsed_s = 0.0042 + 0.812;
    reporter.report(m);
  }
  std::vector<std::string> lines = split_lines(testing::internal::GetCapturedStdout());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(contains(lines[0], "4.2 ms")) << lines[0];
  EXPECT_TRUE(contains(lines[1], "812 ms")) << lines[1];
  // ETA from the recent step rate, over an hour shown as hours and minutes.
  EXPECT_TRUE(contains(lines[1], "ETA ")) << lines[1];
  EXPECT_TRUE(contains(lines[1], "h")) << lines[1];
}

TEST_F(ProgressTest, InteractiveLineIsRewrittenAndCommittedEveryTenth) {
  testing::internal::CaptureStdout();
  {
    rw::ProgressReporter reporter("", 20, /*interactive=*/true);
    for (int step = 1; step <= 20; ++step) reporter.report(metrics_at(step, 20));
    reporter.finish();
  }
  const std::string out = testing::internal::GetCapturedStdout();
  // Every report starts with \r and clears the rest of the line.
  size_t returns = 0, clears = 0;
  for (size_t p = 0; (p = out.find('\r', p)) != std::string::npos; ++p) ++returns;
  for (size_t p = 0; (p = out.find("\x1b[K", p)) != std::string::npos; ++p) ++clears;
  EXPECT_EQ(returns, 20u);
  EXPECT_EQ(clears, 20u);
  // 20 steps: a line is left behind at every 10% (every 2 steps), the last one at 100%.
  std::vector<std::string> lines = split_lines(out);
  EXPECT_EQ(lines.size(), 10u) << out;
  EXPECT_EQ(out.back(), '\n');
  EXPECT_TRUE(contains(lines.back(), "step 20/20 (100%)")) << lines.back();
  EXPECT_TRUE(contains(out, "loss 4.7500"));
  EXPECT_TRUE(contains(out, "2048 tok/s"));
  EXPECT_TRUE(contains(out, "ETA"));
}

TEST_F(ProgressTest, FinishEndsAnOpenLiveLine) {
  testing::internal::CaptureStdout();
  {
    rw::ProgressReporter reporter("", 1000, true);
    reporter.report(metrics_at(1, 1000));
    reporter.finish();
    reporter.finish();  // a second finish adds nothing
  }
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1);
}

}  // namespace
