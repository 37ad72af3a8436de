// One training run in memory: model, optimizer, data loader and schedule. `step()` runs one
// optimizer step (grad_accum micro-batches, clipping, AdamW) and returns what the logs need.
#pragma once
#include <cmath>
#include <memory>
#include <string>

#include "data/batch_loader.h"
#include "data/batch_prefetcher.h"
#include "data/token_source.h"
#include "dist/data_parallel.h"
#include "dist/process_grid.h"
#include "dist/ring_attention.h"
#include "dist/ulysses_attention.h"
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
  // MoE models: the load-balancing loss (summed over layers, mean over micro-batches and dp ranks)
  // and the assignments dropped over capacity (summed over both); NaN and 0 for a dense model.
  double moe_aux_loss = NAN;
  long long moe_dropped = 0;
};

// Under tensor parallelism, what checkpoints hold: every parameter and its AdamW moments at the
// logical (unsharded) shape, laid out by a table of the same entries without splits.
struct LogicalState {
  ParamTable table;
  std::vector<float> params, exp_avg, exp_avg_sq;
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
  // Under ZeRO-1 gathers the sharded AdamW moments into optimizer() for a checkpoint, and under
  // tensor parallelism every rank's shards of the weights and moments into logical_state();
  // collective: every rank calls it at the step rank 0 saves. A no-op otherwise.
  void gather_optimizer_state();
  // Null unless tp > 1 or ep > 1. shard_logical_state() slices what a checkpoint loaded into it back into
  // this rank's model and optimizer (before resume_at).
  LogicalState* logical_state() { return logical_.get(); }
  void shard_logical_state();
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
  std::unique_ptr<ContextAttention> cp_attention_;  // the model's attention when cp > 1 (--cp-algo)
  std::vector<int32_t> cp_positions_;  // global positions of this rank's tokens in a row (cp > 1)
  std::unique_ptr<LogicalState> logical_;  // tp > 1 or ep > 1 only
  // Under expert parallelism: every ep rank's experts (weights and moments) into logical_, from
  // their owners, once each rank's own tensors are there.
  void gather_experts();
  std::unique_ptr<TokenSource> val_data_;
  std::unique_ptr<BatchLoader> val_loader_;
  int step_ = 0;
};

}  // namespace rw
