// The subcommands of the `ringwise` binary. Each returns the process exit code; a UserError thrown
// inside is printed as one line by main() and exits with code 2.
#pragma once
#include <string>
#include <vector>

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

// These parse their own arguments (everything after the command word).
int prepare_command(const std::vector<std::string>& args);    // jobs/prepare_command.cpp
int tokenizer_command(const std::vector<std::string>& args);  // jobs/tokenizer_command.cpp
int inspect_command(const std::vector<std::string>& args);    // jobs/inspect_command.cpp
int bench_io_command(const std::vector<std::string>& args);   // jobs/bench_io_command.cpp
int bench_ring_command(const std::vector<std::string>& args); // jobs/bench_ring_command.cpp
int bench_bpt_command(const std::vector<std::string>& args);  // jobs/bench_bpt_command.cpp
int bench_dp_command(const std::vector<std::string>& args);   // jobs/bench_dp_command.cpp
int export_command(const std::vector<std::string>& args);     // jobs/hf_interchange_command.cpp
int import_command(const std::vector<std::string>& args);     // jobs/hf_interchange_command.cpp
int eval_command(const std::vector<std::string>& args);       // jobs/eval_command.cpp
int make_probes_command(const std::vector<std::string>& args);  // jobs/make_probes_command.cpp
int generate_command(const std::vector<std::string>& args);   // jobs/generate_command.cpp
int submit_command(const std::vector<std::string>& args);     // jobs/submit_command.cpp
int status_command(const std::vector<std::string>& args);     // jobs/status_command.cpp
int plot_command(const std::vector<std::string>& args);       // jobs/plot_command.cpp

}  // namespace rw
