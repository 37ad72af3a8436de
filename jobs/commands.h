// The subcommands of the `ringwise` binary. Each returns the process exit code; a UserError thrown
// inside is printed as one line by main() and exits with code 2.
#pragma once
#include "jobs/run_config.h"

namespace rw {

int run_train(const RunConfig& cfg);  // jobs/train_command.cpp

struct BenchTrainOptions {
  RunConfig run;       // model and batch shape to time
  int warmup_steps = 2;
  int timed_steps = 10;
  bool json = false;   // one JSON object instead of the table
};
int run_bench_train(const BenchTrainOptions& opts);  // jobs/bench_command.cpp

}  // namespace rw
