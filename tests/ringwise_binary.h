// Runs the built `ringwise` binary (RINGWISE_BINARY) the way a user would, for the jobs_ tests:
// alone, or under mpirun.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/test_support.h"

namespace rw::test {

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

// stdout and stderr captured apart (stderr through `err_path`); arguments are single-quoted, so
// they must not contain quotes themselves.
inline RunResult run_ringwise(const std::vector<std::string>& args, const std::string& err_path) {
  std::string cmd = RINGWISE_BINARY;
  for (const std::string& a : args) cmd += " '" + a + "'";
  cmd += " 2>'" + err_path + "' </dev/null";
  RunResult r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) r.out.append(buf, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_path);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  return r;
}

// A shell command line; stdout and stderr together in `out` (the ranks of mpirun interleave them).
inline RunResult run_command(const std::string& command) {
  RunResult r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) r.out.append(buf, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// "loss" and "grad_norm" of every line of a metrics.jsonl, in order.
inline std::vector<std::pair<double, double>> metrics_curve(const std::string& metrics) {
  std::vector<std::pair<double, double>> points;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    auto number_after = [&](const std::string& key) {
      return std::atof(line.c_str() + line.find("\"" + key + "\":") + key.size() + 3);
    };
    points.emplace_back(number_after("loss"), number_after("grad_norm"));
  }
  return points;
}

// For `ringwise train` under mpirun against a single process: a scratch directory holding
// corpus.txt, the mpirun prefix, and the comparison of the metrics curves.
class MpiTrainingTest : public TempDirTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(TempDirTest::SetUp());
    // mpirun refuses root without these two (containers).
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    std::ofstream text(path("corpus.txt"));
    for (int i = 0; i < 200; ++i) text << "line " << i << ": the quick brown fox jumps over the lazy dog.\n";
  }

  // The options of the dist tests (tests/CMakeLists.txt): more ranks than cores need --oversubscribe.
  static std::string mpirun(int np) {
    return "mpirun --oversubscribe --mca btl self,vader -np " + std::to_string(np) + " ";
  }

  // Rank 0's metrics in `run_dir` follow `expected` step by step, relative 1e-5: only the order of
  // float sums may differ.
  void expect_same_curve(const std::string& run_dir, const std::vector<std::pair<double, double>>& expected) const {
    const auto got = metrics_curve(path(run_dir + "/metrics.jsonl"));
    ASSERT_EQ(got.size(), expected.size()) << run_dir;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i].first, expected[i].first, 1e-5 * expected[i].first) << run_dir << " step " << i + 1;
      EXPECT_NEAR(got[i].second, expected[i].second, 1e-5 * expected[i].second) << run_dir << " step " << i + 1;
    }
  }

  // The last `n` points of `run_dir`'s curve follow the last `n` of `expected` (a resumed run).
  void expect_same_tail(const std::string& run_dir, const std::vector<std::pair<double, double>>& expected,
                        size_t n) const {
    const auto got = metrics_curve(path(run_dir + "/metrics.jsonl"));
    ASSERT_GE(got.size(), n) << run_dir;
    for (size_t i = 1; i <= n; ++i) {
      const auto& g = got[got.size() - i];
      const auto& e = expected[expected.size() - i];
      EXPECT_NEAR(g.first, e.first, 1e-5 * e.first) << run_dir << " point -" << i;
      EXPECT_NEAR(g.second, e.second, 1e-5 * e.second) << run_dir << " point -" << i;
    }
  }
};

}  // namespace rw::test
