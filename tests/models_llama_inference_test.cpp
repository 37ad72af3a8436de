// KV-cache inference against the training forward pass recomputed over the whole sequence: the
// same logits at every position whatever the prefill blocks, and the same greedy tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "models/llama.h"
#include "models/llama_inference.h"
#include "tests/inference_test_support.h"

namespace rw {
namespace {

// Logits [T, V] of the training forward over the whole sequence.
std::vector<float> full_logits(LlamaModel& model, const std::vector<int32_t>& tokens) {
  const int T = static_cast<int>(tokens.size()), V = model.config().vocab_size;
  std::vector<int32_t> no_targets(T, -1);
  model.forward(tokens.data(), no_targets.data(), 1, T);
  return std::vector<float>(model.logits(), model.logits() + static_cast<size_t>(T) * V);
}

void expect_cached_logits_match(bool tied, int experts = 0) {
  LlamaModel model = test::inference_test_model(tied, experts);
  const int V = model.config().vocab_size, T = 30;
  const std::vector<int32_t> tokens = test::some_tokens(T, V);
  const std::vector<float> expected = full_logits(model, tokens);
  ASSERT_EQ(model.moe_dropped(), 0);
  float scale = 0;
  for (float v : expected) scale = std::max(scale, std::fabs(v));

  // Blocks of uneven sizes, single tokens among them, cover the sequence.
  LlamaInference engine(model, 40, 4);
  int at = 0;
  for (int n : {5, 1, 9, 1, 1, 13}) {
    engine.append(tokens.data() + at, n, true);
    for (int i = 0; i < n; ++i)
      for (int v = 0; v < V; ++v)
        ASSERT_NEAR(engine.all_logits()[static_cast<size_t>(i) * V + v], expected[static_cast<size_t>(at + i) * V + v],
                    1e-5f * scale)
            << "position " << at + i << " id " << v;
    at += n;
  }
  EXPECT_EQ(at, T);
  EXPECT_EQ(engine.length(), T);
}

TEST(LlamaInference, CachedLogitsEqualFullRecomputation) { expect_cached_logits_match(false); }
TEST(LlamaInference, CachedLogitsEqualFullRecomputationTied) { expect_cached_logits_match(true); }
TEST(LlamaInference, CachedLogitsEqualFullRecomputationMoe) { expect_cached_logits_match(false, 4); }

TEST(LlamaInference, GreedyDecodingEqualsRecomputingEveryStep) {
  LlamaModel model = test::inference_test_model();
  const int V = model.config().vocab_size;
  const std::vector<int32_t> prompt = test::some_tokens(11, V);
  std::vector<int32_t> seq = prompt, expected;
  for (int step = 0; step < 20; ++step) {
    const std::vector<float> logits = full_logits(model, seq);
    const float* last = logits.data() + (seq.size() - 1) * V;
    const int32_t next = static_cast<int32_t>(std::max_element(last, last + V) - last);
    expected.push_back(next);
    seq.push_back(next);
  }
  LlamaInference engine(model, 64);
  GenerateOptions opts;
  opts.max_new_tokens = 20;
  opts.prefill_block = 4;  // the prompt in three blocks
  EXPECT_EQ(generate(engine, prompt, opts), expected);

  // A stop token ends generation before it is emitted.
  opts.stop_tokens = {expected[5]};
  const auto stopped = generate(engine, prompt, opts);
  const auto first = std::find(expected.begin(), expected.end(), expected[5]);
  EXPECT_EQ(stopped, std::vector<int32_t>(expected.begin(), first));
}

TEST(LlamaInference, RefusesContextsThatDoNotFit) {
  LlamaModel model = test::inference_test_model();
  EXPECT_THROW(LlamaInference(model, 65), UserError);  // beyond max_seq 64
  LlamaInference engine(model, 8);
  const std::vector<int32_t> tokens = test::some_tokens(9, model.config().vocab_size);
  EXPECT_THROW(engine.append(tokens.data(), 9), UserError);
  engine.append(tokens.data(), 8);
  EXPECT_THROW(engine.append(tokens.data(), 1), UserError);
  const int32_t bad = 40;
  engine.reset();
  EXPECT_THROW(engine.append(&bad, 1), UserError);
}

TEST(Sampling, GreedyTopPAndTemperature) {
  const float logits[3] = {0.0f, std::log(3.0f), -50.0f};
  Rng rng(1);
  EXPECT_EQ(choose_next_token(logits, 3, {}, rng), 1);
  // A nucleus smaller than the top id's mass leaves only that id.
  EXPECT_EQ(choose_next_token(logits, 3, {1.0f, 0.5f}, rng), 1);
  // Temperature 1, full nucleus: id 1 with probability 3/4 (id 2's e^-50 is negligible). 4000
  // draws put the frequency within 0.05 of it with overwhelming probability (6 sigma is 0.041).
  int ones = 0;
  for (int i = 0; i < 4000; ++i) ones += choose_next_token(logits, 3, {1.0f, 1.0f}, rng) == 1;
  EXPECT_NEAR(ones / 4000.0, 0.75, 0.05);
}

}  // namespace
}  // namespace rw
