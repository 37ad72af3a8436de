// The small model of the inference tests (models_llama_inference_test, dist_cp_inference_test).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "models/llama.h"

namespace rw::test {

// GQA (4 query heads over 2 kv heads), untied, weights scaled up so the logits are far apart and
// greedy choices are not decided by rounding. With `experts`, layer 1 is a mixture of experts
// (top-2) whose capacity drops nothing in the training forward either.
inline LlamaModel inference_test_model(bool tied = false, int experts = 0) {
  LlamaConfig cfg;
  cfg.vocab_size = 40;
  cfg.d_model = 32;
  cfg.n_layers = 2;
  cfg.n_heads = 4;
  cfg.n_kv_heads = 2;
  cfg.ffn_dim = 48;
  cfg.max_seq = 64;
  cfg.tied_embeddings = tied;
  cfg.moe_experts = experts;
  cfg.moe_every = 2;
  cfg.moe_capacity_factor = 4.0f;
  LlamaModel model(cfg, 8, 8);
  model.init_weights(7);
  Tensor& p = model.param_buffer();
  for (int64_t i = 0; i < p.numel(); ++i) p.data<float>()[i] *= 6.0f;
  return model;
}

// n token ids below V, in a fixed pattern.
inline std::vector<int32_t> some_tokens(int n, int V) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = (i * 7 + 3) % V;
  return t;
}

}  // namespace rw::test
