// Training end to end in memory: the loss falls on a fixed corpus, and a run is a pure function of
// its configuration and seed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "jobs/trainer.h"
#include "tests/test_support.h"

namespace rw {
namespace {

// A small, very repetitive corpus: a model that learns anything at all drives the loss well below
// the uniform-guess level ln(256) = 5.55 within a few dozen steps.
std::string fixed_corpus() {
  std::string text;
  for (int i = 0; i < 40; ++i)
    text += "the quick brown fox jumps over the lazy dog. pack my box with five dozen liquor jugs.\n";
  return text;
}

RunConfig tiny_run(uint64_t seed) {
  RunConfig cfg = test::tiny_run_config();
  TrainConfig& t = cfg.train;
  t.seq_len = 32;
  t.batch_size = 4;
  t.grad_accum = 2;
  t.steps = 30;
  t.lr = 1e-2f;
  t.min_lr = 1e-3f;
  t.warmup_steps = 3;
  t.seed = seed;
  t.attn_block_q = 8;
  t.attn_block_k = 16;
  t.threads = 2;
  return cfg;
}

std::vector<float> train(const RunConfig& cfg, std::vector<float>* params = nullptr) {
  Trainer trainer(cfg, text_tokens_from_string(fixed_corpus(), "fixed corpus"));
  std::vector<float> losses;
  for (int i = 0; i < cfg.train.steps; ++i) losses.push_back(trainer.step().loss);
  if (params) {
    const float* p = trainer.model().param_buffer().data<float>();
    params->assign(p, p + trainer.model().params().total());
  }
  return losses;
}

TEST(Training, ThirtyStepsLowerTheLoss) {
  const std::vector<float> losses = train(tiny_run(1));
  ASSERT_EQ(losses.size(), 30u);
  // Starts near the uniform level, ln 256 = 5.55 (small random init).
  EXPECT_NEAR(losses.front(), std::log(256.0f), 0.1f);
  // The stated margin: the mean of the last 5 losses is at least 2.0 nats below the first.
  float tail = 0;
  for (int i = 25; i < 30; ++i) tail += losses[i] / 5;
  EXPECT_LT(tail, losses.front() - 2.0f) << "first " << losses.front() << " last-5 mean " << tail;
  for (float l : losses) EXPECT_TRUE(std::isfinite(l));
}

TEST(Training, SameSeedIsBitIdenticalAndOtherSeedDiffers) {
  std::vector<float> p1, p2, p3;
  RunConfig cfg = tiny_run(5);
  cfg.train.steps = 8;
  const std::vector<float> a = train(cfg, &p1);
  const std::vector<float> b = train(cfg, &p2);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
  ASSERT_EQ(p1.size(), p2.size());
  EXPECT_EQ(0, std::memcmp(p1.data(), p2.data(), p1.size() * sizeof(float)));

  cfg.train.seed = 6;
  const std::vector<float> c = train(cfg, &p3);
  EXPECT_NE(0, std::memcmp(a.data(), c.data(), a.size() * sizeof(float)));
}

// Every kernel reduces in an order fixed by the shapes alone, so the thread count cannot change a
// bit of the result.
TEST(Training, ThreadCountDoesNotChangeTheBits) {
  RunConfig cfg = tiny_run(3);
  cfg.train.steps = 5;
  cfg.train.batch_size = 8;  // enough rows that every thread gets a share of each matmul
  std::vector<float> p1, p2;
  cfg.train.threads = 1;
  const std::vector<float> one = train(cfg, &p1);
  cfg.train.threads = 2;
  const std::vector<float> two = train(cfg, &p2);
  EXPECT_EQ(0, std::memcmp(one.data(), two.data(), one.size() * sizeof(float)));
  ASSERT_EQ(p1.size(), p2.size());
  EXPECT_EQ(0, std::memcmp(p1.data(), p2.data(), p1.size() * sizeof(float)));
}

TEST(Training, FlopsPerTokenCountsMatmulsAndAttention) {
  RunConfig cfg = tiny_run(1);
  Trainer trainer(cfg, text_tokens_from_string(fixed_corpus(), "fixed corpus"));
  const LlamaConfig& m = cfg.model;
  const double C = m.d_model, F = m.ffn_dim, V = m.vocab_size, HD = m.n_heads * m.head_dim(),
               KVD = m.n_kv_heads * m.head_dim();
  const double per_layer = C * HD * 2 + C * KVD * 2 + 3 * C * F;
  const double expected = 6 * (m.n_layers * per_layer + V * C) + 6.0 * m.n_layers * HD * cfg.train.seq_len;
  EXPECT_NEAR(trainer.flops_per_token(), expected, 1e-6 * expected);
}

TEST(Training, DataWithLargerVocabThanModelIsRejected) {
  RunConfig cfg = tiny_run(1);
  cfg.model.vocab_size = 128;
  EXPECT_THROW(Trainer(cfg, text_tokens_from_string(fixed_corpus(), "fixed corpus")), UserError);
}

}  // namespace
}  // namespace rw
