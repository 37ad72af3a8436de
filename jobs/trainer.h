// One training run in memory: model, optimizer, data loader and schedule. `step()` runs one
// optimizer step (grad_accum micro-batches, clipping, AdamW) and returns what the logs need.
#pragma once
#include <memory>
#include <string>

#include "data/batch_loader.h"
#include "data/batch_prefetcher.h"
#include "data/token_source.h"
#include "dist/data_parallel.h"
#include "dist/process_grid.h"
#include "dist/ring_attention.h"
#include "jobs/run_config.h"
#include "models/adamw.h"
#include "models/llama.h"

namespace rw {

struct StepResult {
  int step = 0;          // 1-based index of the step just taken
  float loss = 0;        // mean over the step's tokens, over all dp ranks
  float grad_norm = 0;   // before clipping
  float lr = 0;
  double seconds = 0;    // wall time of the step
  int64_t tokens = 0;    // tokens processed in the step, over all dp ranks
};

class Trainer {
 public:
  // Over the ranks MPI started when it is initialised (dp*tp*cp*ep of them), else one process.
  // val_data, when given, is what validation_loss() measures.
  Trainer(const RunConfig& cfg, std::unique_ptr<TokenSource> data, std::unique_ptr<TokenSource> val_data = nullptr);
  StepResult step();
  // Mean loss over --val-batches batches of the validation data, forward only: the same windows at
  // every call, so measurements compare across steps. Every rank calls it at the same step.
  float validation_loss();
  bool has_validation() const { return val_loader_ != nullptr; }
  int steps_done() const { return step_; }
  // Model FLOPs per trained token for forward + backward (6N plus attention), for MFU.
  double flops_per_token() const;
  LlamaModel& model() { return model_; }
  ProcessGrid& grid() { return grid_; }
  AdamW& optimizer() { return optimizer_; }
  // Continues from a checkpoint already loaded into model() and optimizer(): batches are a pure
  // function of the step, so the step counts are the only other state.
  void resume_at(int steps_done, int adam_step);
  // Under ZeRO-1 gathers the sharded AdamW moments into optimizer() for a checkpoint; collective:
  // every rank calls it at the step rank 0 saves. A no-op otherwise.
  void gather_optimizer_state();
  const RunConfig& config() const { return cfg_; }
  std::string data_description() const { return data_->describe(); }

 private:
  // The model's forward on one [B, T] batch: under context parallelism on this rank's zigzag part
  // of it (the cp ranks of a dp group all load the same batch).
  float forward_batch(const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets);

  RunConfig cfg_;
  std::unique_ptr<TokenSource> data_;
  ProcessGrid grid_;
  BatchLoader loader_;
  BatchPrefetcher prefetcher_;
  LlamaModel model_;
  AdamW optimizer_;  // unused under ZeRO-1, whose sharded state lives in dp_
  DataParallel dp_;
  RingAttention ring_;                // the model's attention when cp > 1
  std::vector<int32_t> cp_positions_;  // global positions of this rank's tokens in a row (cp > 1)
  std::unique_ptr<TokenSource> val_data_;
  std::unique_ptr<BatchLoader> val_loader_;
  int step_ = 0;
};

}  // namespace rw
