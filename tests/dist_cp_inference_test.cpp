// Context-parallel inference (LlamaInference::set_context_parallel: ring-attention prefill, decode
// over the cache spread across the ranks) against the single-process engine, which
// models_llama_inference_test checks against the full training forward. Every rank runs the
// reference itself; the prompts' lengths are not multiples of 2P, so the prefill pads, and the
// shortest leaves a rank of 4 without any prompt token.
//
// Tolerance: relative 1e-5 on the logits. The cp run does each token's arithmetic as the single
// process does, except that attention sums over the keys in another grouping (ring steps, then one
// partial per rank merged), roundings near 1e-7 relative; a wrong position, cache row or merge
// is off by far more. Every rank must get the same bits, since each continues on its own.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "dist/communicator.h"
#include "dist/ring_attention.h"
#include "models/llama.h"
#include "models/llama_inference.h"
#include "tests/inference_test_support.h"
#include "tests/numeric_test_support.h"

namespace rw {
namespace {

constexpr double kTol = 1e-5;
constexpr int kNewTokens = 8;

// Every rank holds the same logits, bit for bit.
void expect_same_on_every_rank(Communicator& comm, const float* logits, int V) {
  std::vector<float> all(static_cast<size_t>(comm.size()) * V);
  comm.allgather(logits, all.data(), V);
  for (int r = 1; r < comm.size(); ++r)
    EXPECT_TRUE(std::equal(logits, logits + V, all.data() + static_cast<size_t>(r) * V)) << "rank " << r;
}

// Prefill a prompt of `n` tokens, then decode greedily, feeding both engines the reference's
// choice; the logits after the prompt and after every new token must agree.
void expect_cp_matches_one_process(int n, int experts) {
  std::unique_ptr<Communicator> world = make_mpi_world();
  LlamaModel model = test::inference_test_model(false, experts);
  const int V = model.config().vocab_size, capacity = n + kNewTokens;
  RingAttention ring(*world);
  LlamaInference reference(model, capacity, 4), cp(model, capacity, 4);
  cp.set_context_parallel(&ring);
  EXPECT_EQ(cp.context_parallel(), world->size() > 1);

  const std::vector<int32_t> prompt = test::some_tokens(n, V);
  const float* w = reference.append(prompt.data(), n);
  std::vector<float> want(w, w + V);
  const float* got = cp.append(prompt.data(), n);
  for (int step = 0; step <= kNewTokens; ++step) {
    SCOPED_TRACE(testing::Message() << "prompt " << n << ", step " << step);
    EXPECT_LT(test::relative_error(got, want.data(), V), kTol);
    expect_same_on_every_rank(*world, got, V);
    const int32_t next = static_cast<int32_t>(std::max_element(want.begin(), want.end()) - want.begin());
    EXPECT_EQ(std::max_element(got, got + V) - got, next);
    if (step == kNewTokens) break;
    w = reference.append(&next, 1);
    want.assign(w, w + V);
    got = cp.append(&next, 1);
  }
  EXPECT_EQ(cp.length(), capacity);
}

TEST(ContextParallelInference, MatchesOneProcess) {
  for (int n : {3, 13, 29}) expect_cp_matches_one_process(n, 0);
}

TEST(ContextParallelInference, MatchesOneProcessWithExperts) { expect_cp_matches_one_process(13, 4); }

}  // namespace
}  // namespace rw
