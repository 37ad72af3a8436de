// Shared by the whole-model distributed tests (data, tensor, context and expert parallel): the
// seeded global batch, the optimiser settings, one rank of a process grid, the single-process
// reference model and the clipping scale.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/random.h"
#include "dist/data_parallel.h"
#include "dist/process_grid.h"
#include "dist/ring_attention.h"
#include "dist/zigzag.h"
#include "models/adamw.h"
#include "models/llama.h"
#include "tests/numeric_test_support.h"

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

inline int counted_targets(const int32_t* targets, int n) {
  return static_cast<int>(std::count_if(targets, targets + n, [](int32_t t) { return t >= 0; }));
}

// One rank of a process grid, training as the trainer does: dp and ep split the rows of the global
// batch (an ep group's rows consecutive), cp gives it the zigzag part of them, tp its shards and
// ep its experts; its loss weighs by its share of the targets, and DataParallel reduces the
// gradients over the grid during the backward pass.
struct GridRank {
  ProcessGrid grid;
  LlamaModel model;
  DataParallel dp;
  RingAttention ring;
  GridRank(const LlamaConfig& cfg, const GridSizes& sizes, const DataParallelOptions& opts, int attn_block = 64)
      : grid(make_mpi_world(), sizes),
        model(cfg, attn_block, attn_block, &grid.tp(), &grid.ep()),
        dp(grid, model.params(), model.param_buffer(), model.grad_buffer(), hyper(), opts),
        ring(grid.cp()) {
    model.init_weights(11);
    if (sizes.cp > 1) model.set_context_parallel(&ring);
  }
  // The global mean loss; leaves the reduced gradients and puts the global norm in *norm.
  float forward_backward(const Batch& b, float* norm) {
    const GridSizes& s = grid.sizes();
    const int P = s.cp, rows = kRows / (s.dp * s.ep), n = rows * kSeq;
    const int first = (grid.coord().dp * s.ep + grid.coord().ep) * n;
    const double mine = counted_targets(b.targets.data() + first, n);
    double total = mine;
    grid.dp().allreduce(&total, 1);
    grid.ep().allreduce(&total, 1);
    std::vector<int32_t> tokens(n / P), targets(n / P);
    zigzag_scatter(tokens.data(), b.tokens.data() + first, rows, kSeq, 1, P, grid.coord().cp);
    zigzag_scatter(targets.data(), b.targets.data() + first, rows, kSeq, 1, P, grid.coord().cp);
    const std::vector<int32_t> pos = zigzag_positions(kSeq, P, grid.coord().cp);
    model.zero_grad();
    const float loss = model.forward(tokens.data(), targets.data(), rows, kSeq / P, pos.data());
    model.backward(static_cast<float>(mine / total), [this](size_t offset) { dp.grads_final_from(offset); });
    *norm = dp.reduce_grads();
    double weighted = loss * mine / total;
    grid.dp().allreduce(&weighted, 1);
    grid.ep().allreduce(&weighted, 1);
    return static_cast<float>(weighted);
  }
  // Parameter or gradient `p` gathered from the tp ranks at its logical shape.
  std::vector<float> logical(const ParamInfo& p, const float* buffer) {
    std::vector<float> shards(p.numel() * grid.tp().size()), full(p.logical_numel());
    grid.tp().allgather(buffer + p.offset, shards.data(), p.numel());
    assemble_shards(p, shards.data(), full.data());
    return full;
  }
};

// The single-process model on the whole global batch.
struct Reference {
  LlamaModel model;
  // MoE blocks route each of `groups` equal slices of the rows on its own, as each dp rank routes
  // its rows: the slices run as micro-batches weighted by their share of the targets.
  int groups = 1;
  explicit Reference(const LlamaConfig& c, int attn_block_q = 64, int attn_block_k = 64)
      : model(c, attn_block_q, attn_block_k) {
    model.init_weights(11);
  }
  float forward_backward(const Batch& b) {
    model.zero_grad();
    const int rows = kRows / groups, n = rows * kSeq;
    const double total = counted_targets(b.targets.data(), kRows * kSeq);
    double loss = 0;
    for (int g = 0; g < groups; ++g) {
      const double share = counted_targets(&b.targets[g * n], n) / total;
      loss += share * model.forward(&b.tokens[g * n], &b.targets[g * n], rows, kSeq);
      model.backward(static_cast<float>(share));
    }
    return static_cast<float>(loss);
  }
  float grad_norm() { return global_grad_norm(model.grad_buffer().data<float>(), model.params().total()); }
};

// One step of `rank` and `ref` on the first global batch, which leaves their gradients for the
// caller to compare: the losses match (relative 1e-5) and the gradient norms (relative `norm_tol`).
inline void expect_first_step_matches(GridRank& rank, Reference& ref, double norm_tol) {
  const Batch b = global_batch(0);
  float norm = 0;
  const float loss = rank.forward_backward(b, &norm);
  const float ref_loss = ref.forward_backward(b);
  EXPECT_NEAR(loss, ref_loss, 1e-5 * std::fabs(ref_loss));
  const float ref_norm = ref.grad_norm();
  EXPECT_NEAR(norm, ref_norm, norm_tol * ref_norm);
}

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
