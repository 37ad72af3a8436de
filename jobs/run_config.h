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
  int threads = 0;          // OpenMP/OpenBLAS threads; 0 = all cores
  std::string data;         // training text (byte-level tokens); empty = built-in default corpus
  std::string run_dir = "runs/latest";
  std::string metrics;      // JSONL path; empty = <run_dir>/metrics.jsonl
  int log_every = 1;
};

struct RunConfig {
  std::string preset = "small";
  LlamaConfig model = LlamaConfig::preset("small");
  TrainConfig train;
  // Throws UserError naming the field for an impossible combination (seq_len > max_seq, ...).
  void validate() const;
};

}  // namespace rw
