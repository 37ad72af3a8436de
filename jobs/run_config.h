// Everything one `ringwise train` run needs, filled from presets, the INI config file and the
// command line (in that order of precedence, last wins).
#pragma once
#include <cstdint>
#include <string>

#include "models/llama_config.h"

namespace rw {

struct TrainConfig {
  int seq_len = 256;
  int batch_size = 8;       // sequences per micro-batch
  int grad_accum = 1;       // micro-batches per optimizer step
  int steps = 300;
  float lr = 1e-3f;         // peak learning rate
  float min_lr = 1e-4f;     // floor of the cosine decay
  int warmup_steps = 20;
  float weight_decay = 0.1f;
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float adam_eps = 1e-8f;
  float grad_clip = 1.0f;   // global-norm clipping threshold; 0 disables
  uint64_t seed = 1337;
  int attn_block_q = 64;
  int attn_block_k = 64;
  int bpt_block = 0;        // rows per blockwise MLP/loss block, recomputed in backward; 0 = off
  int threads = 0;          // OpenMP/OpenBLAS threads; 0 = all cores
  std::string data;         // training text (byte-level tokens); empty = built-in default corpus
  std::string run_dir = "runs/latest";
  std::string metrics;      // JSONL path; empty = <run_dir>/metrics.jsonl
  int log_every = 1;
  std::string data_order = "random";  // training windows: random or sequential (data/batch_loader.h)
  int val_every = 0;        // steps between validation-loss measurements; 0 = never
  int val_batches = 8;      // fixed batches of the validation split averaged per measurement
  std::string ckpt_dir;     // empty = <run_dir>/checkpoints
  int save_every = 0;       // steps between checkpoints; 0 = only at the end (the last step always saves)
  int keep_last = 3;        // checkpoints kept in ckpt_dir; 0 = all
  std::string resume;       // empty = start fresh; "auto" = newest in ckpt_dir if any; else a checkpoint path
};

// How the run is spread over MPI ranks (see dist/process_grid.h); all 1 = one process.
struct ParallelConfig {
  int dp = 1;                // data-parallel ranks
  int tp = 1;                // tensor-parallel ranks (heads, ffn and vocabulary split over them)
  int cp = 1;                // context-parallel ranks (zigzag layout)
  std::string cp_algo = "ring";  // context-parallel attention: "ring" or "ulysses" (all-to-all over heads)
  int ep = 1;                // expert-parallel ranks (shard the MoE experts)
  int zero = 0;              // 1 = shard the optimizer state over dp (ZeRO-1)
  float bucket_mb = 25;      // gradient allreduce bucket size
  float comm_timeout = 300;  // seconds a collective may block before the job is aborted; 0 = never
};

struct RunConfig {
  std::string preset = "small";
  LlamaConfig model = LlamaConfig::preset("small");
  TrainConfig train;
  ParallelConfig parallel;
  // Throws UserError naming the field for an impossible combination (seq_len > max_seq, ...).
  void validate() const;
};

}  // namespace rw
