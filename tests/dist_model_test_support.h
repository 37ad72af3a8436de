// Shared by the whole-model distributed tests (data parallel, tensor parallel): the seeded global
// batch, the optimiser settings, the single-process reference model and the clipping scale.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/random.h"
#include "models/adamw.h"
#include "models/llama.h"

namespace rw::test {

constexpr int kRows = 4, kSeq = 8;

inline cpu::AdamWParams hyper() {
  cpu::AdamWParams h;
  h.lr = 3e-3f;
  return h;
}

// The global batch of a step; some targets are ignored (-1), unevenly across rows, so that dp
// ranks count different numbers of targets.
struct Batch {
  std::vector<int32_t> tokens, targets;
};
inline Batch global_batch(int step) {
  Batch b{std::vector<int32_t>(kRows * kSeq), std::vector<int32_t>(kRows * kSeq)};
  for (int i = 0; i < kRows * kSeq; ++i) {
    b.tokens[i] = static_cast<int32_t>(hash_keys(7, step, i, 0) % 64);
    b.targets[i] = static_cast<int32_t>(hash_keys(7, step, i, 1) % 64);
  }
  for (int t = 0; t < 3; ++t) b.targets[t] = -1;  // row 0 counts 3 targets fewer
  return b;
}

// The single-process model on the whole global batch.
struct Reference {
  LlamaModel model;
  explicit Reference(const LlamaConfig& c, int attn_block_q = 64, int attn_block_k = 64)
      : model(c, attn_block_q, attn_block_k) {
    model.init_weights(11);
  }
  float forward_backward(const Batch& b) {
    model.zero_grad();
    const float loss = model.forward(b.tokens.data(), b.targets.data(), kRows, kSeq);
    model.backward();
    return loss;
  }
  float grad_norm() { return global_grad_norm(model.grad_buffer().data<float>(), model.params().total()); }
};

// The factor that clips a gradient of global norm `norm` to `clip`.
inline float clip_scale(float norm, float clip) { return norm > clip ? clip / (norm + 1e-6f) : 1.0f; }

// Ten AdamW steps with clipping at 0.5 on `rank` (any distributed rank with `model`, `dp` and
// forward_backward(batch, &norm)) and on the reference: the losses match at every step. `adam`
// steps the rank unless `zero1`, when its DataParallel steps its shard. Call it under
// ASSERT_NO_FATAL_FAILURE: a step whose loss is off ends the run.
template <class Rank>
void run_ten_steps(Rank& rank, Reference& ref, AdamW& adam, AdamW& ref_adam, bool zero1) {
  const float clip = 0.5f;
  for (int step = 0; step < 10; ++step) {
    const Batch b = global_batch(step);
    float norm = 0;
    const float loss = rank.forward_backward(b, &norm);
    const float ref_loss = ref.forward_backward(b);
    ASSERT_NEAR(loss, ref_loss, 1e-5 * std::fabs(ref_loss)) << "step " << step;
    const float ref_norm = ref.grad_norm();
    const float scale = clip_scale(norm, clip);
    const float ref_scale = clip_scale(ref_norm, clip);
    if (zero1)
      rank.dp.zero1_step(hyper().lr, scale);
    else
      adam.step(rank.model.param_buffer().template data<float>(), rank.model.grad_buffer().template data<float>(),
                hyper().lr, scale);
    ref_adam.step(ref.model.param_buffer().data<float>(), ref.model.grad_buffer().data<float>(), hyper().lr,
                  ref_scale);
  }
}

}  // namespace rw::test
