// One training run in memory: model, optimizer, data loader and schedule. `step()` runs one
// optimizer step (grad_accum micro-batches, clipping, AdamW) and returns what the logs need.
#pragma once
#include <memory>
#include <string>

#include "data/batch_loader.h"
#include "data/token_source.h"
#include "jobs/run_config.h"
#include "models/adamw.h"
#include "models/llama.h"

namespace rw {

struct StepResult {
  int step = 0;          // 1-based index of the step just taken
  float loss = 0;        // mean over the step's tokens
  float grad_norm = 0;   // before clipping
  float lr = 0;
  double seconds = 0;    // wall time of the step
  int64_t tokens = 0;    // tokens processed in the step
};

class Trainer {
 public:
  Trainer(const RunConfig& cfg, std::unique_ptr<TokenSource> data);
  StepResult step();
  int steps_done() const { return step_; }
  // Model FLOPs per trained token for forward + backward (6N plus attention), for MFU.
  double flops_per_token() const;
  LlamaModel& model() { return model_; }
  const RunConfig& config() const { return cfg_; }
  std::string data_description() const { return data_->describe(); }

 private:
  RunConfig cfg_;
  std::unique_ptr<TokenSource> data_;
  BatchLoader loader_;
  LlamaModel model_;
  AdamW optimizer_;
  int step_ = 0;
};

}  // namespace rw
