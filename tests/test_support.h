// Fixtures shared by the jobs_ tests: a scratch directory per test and the tiny model's run.
#pragma once
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include "jobs/run_config.h"

namespace rw::test {

// A fresh directory per test, named after the test suite, removed afterwards whatever happened.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string suite = ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name();
    std::string templ = (std::filesystem::temp_directory_path() / ("ringwise_" + suite + "_XXXXXX")).string();
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

// The tiny preset as a RunConfig; each test sets the training options it is about.
inline RunConfig tiny_run_config() {
  RunConfig cfg;
  cfg.preset = "tiny";
  cfg.model = LlamaConfig::preset("tiny");
  return cfg;
}

}  // namespace rw::test
