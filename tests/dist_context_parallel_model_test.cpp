// The LLaMA model under context parallelism (each rank holds the zigzag part of every row, its
// attention is ring attention) against the same model run by one process on the full sequence:
// every rank computes that reference itself from the same seed, and the cp ranks' loss and their
// gradients summed over the ranks must match it.
//
// Tolerance: relative 1e-5 (loss; gradients normwise per tensor). The cp run does the same float
// arithmetic per token except that attention merges per ring step and gradients of the weights
// are summed over ranks in another order, roundings near 1e-7 relative (measured ~1e-6 at most);
// a wrong position, mask, loss count or missing gradient hop is off by far more.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/random.h"
#include "dist/communicator.h"
#include "dist/ring_attention.h"
#include "dist/zigzag.h"
#include "models/llama.h"
#include "tests/numeric_test_support.h"

namespace rw {
namespace {

constexpr double kTol = 1e-5;

// The tiny preset (GQA: 4 heads, 2 KV heads) with a smaller vocabulary and FFN.
LlamaConfig tiny_gqa_config() {
  LlamaConfig c = LlamaConfig::preset("tiny");
  c.vocab_size = 64;
  c.ffn_dim = 48;
  return c;
}

TEST(ContextParallelModel, LossAndGradientsMatchTheFullSequence) {
  std::unique_ptr<Communicator> world = make_mpi_world();
  const int P = world->size(), r = world->rank(), B = 2, T = 2 * P * 6;
  const LlamaConfig cfg = tiny_gqa_config();
  // Blocks of 4 do not divide the 6-token zigzag chunks.
  const int block = 4;

  Rng rng(7);
  std::vector<int32_t> tokens(B * T), targets(B * T);
  for (int n = 0; n < B * T; ++n) {
    tokens[n] = static_cast<int32_t>(rng.next_u64() % cfg.vocab_size);
    // Some ignored targets, so ranks count different numbers of them.
    targets[n] = rng.uniform() < 0.2f ? -1 : static_cast<int32_t>(rng.next_u64() % cfg.vocab_size);
  }

  LlamaModel full(cfg, block, block);
  full.init_weights(5);
  full.zero_grad();
  const float want_loss = full.forward(tokens.data(), targets.data(), B, T);
  full.backward();

  LlamaModel part(cfg, block, block);
  part.init_weights(5);
  part.zero_grad();
  RingAttention ring(*world);
  part.set_context_parallel(&ring);
  std::vector<int32_t> local_tokens(B * T / P), local_targets(B * T / P);
  zigzag_scatter(local_tokens.data(), tokens.data(), B, T, 1, P, r);
  zigzag_scatter(local_targets.data(), targets.data(), B, T, 1, P, r);
  const std::vector<int32_t> pos = zigzag_positions(T, P, r);
  const float loss = part.forward(local_tokens.data(), local_targets.data(), B, T / P, pos.data());
  part.backward();
  Tensor& grads = part.grad_buffer();
  world->allreduce(grads.data<float>(), part.params().total());

  EXPECT_LE(std::fabs(loss - want_loss), kTol * std::fabs(want_loss)) << loss << " vs " << want_loss;
  for (const ParamInfo& p : part.params().entries())
    EXPECT_LE(test::relative_error(part.grad(p.name), full.grad(p.name), p.numel()), kTol)
        << p.name << " on rank " << r << " of " << P;
}

}  // namespace
}  // namespace rw
