// BPT (blockwise MLP and loss, recomputed in backward) against the same model run unblocked: the
// loss, every gradient and the data-parallel hook's offsets match for blocks of one row, of a size
// that does not divide B*T, that does, of exactly B*T and larger; and the activation memory of the
// blocked parts grows with the block, not with the sequence.
//
// Tolerances: each row's arithmetic is the same blocked or not, except that the GEMMs see fewer
// rows (OpenBLAS may then sum a dot product in another order, ~1e-7 relative) and a weight's
// gradient adds its rows block by block instead of in one GEMM: rounding of order
// (B*T / block) * 2^-24 relative to the gradient's scale, below 1e-5 here. 1e-5 on the loss and
// 1e-4 (max |diff| / max |reference| per tensor) on gradients leave room for that and none for a
// block computed from the wrong rows (off by O(1)).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/random.h"
#include "models/llama.h"
#include "tests/numeric_test_support.h"

namespace rw {
namespace {

struct Outcome {
  float loss;
  std::vector<float> grads;
  std::vector<size_t> final_offsets;  // what the GradsFinalHook saw, in order
};

// Forward and backward (at loss scale 0.7) of a fixed batch of 2 rows of 12 tokens, some targets
// ignored, with BPT blocks of `bpt_rows` (0 = off).
Outcome run_model(const LlamaConfig& cfg, int bpt_rows) {
  const int B = 2, T = 12;
  LlamaModel model(cfg, 4, 4);
  model.init_weights(21);
  model.set_bpt_block(bpt_rows);
  Rng rng(5);
  std::vector<int32_t> tokens(B * T), targets(B * T);
  for (int n = 0; n < B * T; ++n) {
    tokens[n] = static_cast<int32_t>(rng.next_u64() % cfg.vocab_size);
    targets[n] = n % 5 == 2 ? -1 : static_cast<int32_t>(rng.next_u64() % cfg.vocab_size);
  }
  Outcome run;
  model.zero_grad();
  run.loss = model.forward(tokens.data(), targets.data(), B, T);
  model.backward(0.7f, [&](size_t offset) { run.final_offsets.push_back(offset); });
  const float* g = model.grad_buffer().data<float>();
  run.grads.assign(g, g + model.params().total());
  return run;
}

struct BptCase {
  const char* name;
  bool tied;
  int moe_experts;  // > 0: every second layer is MoE (run unblocked)
};
void PrintTo(const BptCase& c, std::ostream* os) { *os << c.name; }

LlamaConfig case_config(const BptCase& c) {
  LlamaConfig cfg = LlamaConfig::preset("tiny");  // GQA: 4 heads over 2 KV heads
  cfg.vocab_size = 96;
  cfg.ffn_dim = 48;
  cfg.tied_embeddings = c.tied;
  cfg.moe_experts = c.moe_experts;
  cfg.moe_every = 2;
  return cfg;
}

class BptModel : public testing::TestWithParam<BptCase> {};

TEST_P(BptModel, LossAndEveryGradientMatchTheUnblockedModel) {
  const LlamaConfig cfg = case_config(GetParam());
  const Outcome want = run_model(cfg, 0);
  LlamaModel shapes(cfg);
  // B*T = 24 rows: one row, 5 (the last block partial), 8 (dividing), all of them, more than all.
  for (int rows : {1, 5, 8, 24, 100}) {
    SCOPED_TRACE("bpt block " + std::to_string(rows));
    const Outcome got = run_model(cfg, rows);
    EXPECT_LE(std::fabs(got.loss - want.loss), 1e-5 * std::fabs(want.loss)) << got.loss << " vs " << want.loss;
    for (const ParamInfo& p : shapes.params().entries())
      EXPECT_LE(test::relative_error(got.grads.data() + p.offset, want.grads.data() + p.offset, p.numel()), 1e-4) << p.name;
    EXPECT_EQ(got.final_offsets, want.final_offsets);
  }
}

INSTANTIATE_TEST_SUITE_P(Models, BptModel,
                         testing::Values(BptCase{"gqa", false, 0}, BptCase{"tied", true, 0}, BptCase{"moe", false, 4}),
                         [](const testing::TestParamInfo<BptCase>& i) { return std::string(i.param.name); });

// ---- memory: counted bytes of the activation buffer, for sequences too long to allocate here

LlamaConfig wide(int vocab, int ffn) {
  LlamaConfig cfg = LlamaConfig::preset("tiny");
  cfg.vocab_size = vocab;
  cfg.ffn_dim = ffn;
  cfg.max_seq = 1 << 16;
  return cfg;
}

// Bytes that T -> 2T adds for one sequence of T tokens.
long long growth_with_seq(const LlamaModel& m, int T) {
  return static_cast<long long>(m.activation_bytes(1, 2 * T)) - static_cast<long long>(m.activation_bytes(1, T));
}

TEST(BptMemory, MlpAndLossActivationsGrowWithTheBlockNotTheSequence) {
  const int T = 4096, block = 64;
  // Two models that differ only in the widths BPT blocks: vocabulary (logits) and ffn (gate/up/h).
  LlamaModel narrow(wide(64, 32)), broad(wide(8192, 512));
  const long long dV = 8192 - 64, dF = 512 - 32, layers = wide(64, 32).n_layers;

  // Unblocked, each token keeps logits and their gradient, and gate/up/h per layer plus their
  // gradients' scratch: the longer sequence costs more on the broader model.
  EXPECT_EQ(growth_with_seq(broad, T) - growth_with_seq(narrow, T), T * (2 * dV + (3 * layers + 3) * dF) * 4);

  narrow.set_bpt_block(block);
  broad.set_bpt_block(block);
  // Blocked, the sequence's extra tokens cost the same whatever the vocabulary and ffn widths...
  EXPECT_EQ(growth_with_seq(broad, T), growth_with_seq(narrow, T));
  // ...and those widths cost per block row: logits and gate/up/h, and their gradients, of one block.
  auto growth_with_block = [&](LlamaModel& m) {
    const long long small = static_cast<long long>(m.activation_bytes(1, T));
    m.set_bpt_block(2 * block);
    const long long large = static_cast<long long>(m.activation_bytes(1, T));
    m.set_bpt_block(block);
    return large - small;
  };
  EXPECT_EQ(growth_with_block(broad) - growth_with_block(narrow), block * (2 * dV + 6 * dF) * 4);
  // A block longer than the sequence is capped at the sequence.
  const size_t whole = broad.activation_bytes(1, 32);
  broad.set_bpt_block(1 << 20);
  EXPECT_EQ(broad.activation_bytes(1, 32), whole);
}

TEST(BptOptions, RejectsANegativeBlockAndHidesThePartialLogits) {
  LlamaModel model(LlamaConfig::preset("tiny"));
  EXPECT_THROW(model.set_bpt_block(-1), UserError);
  std::vector<int32_t> tokens(8, 1), targets(8, 2);
  model.forward(tokens.data(), targets.data(), 1, 8);
  EXPECT_NE(model.logits(), nullptr);
  model.set_bpt_block(4);
  model.forward(tokens.data(), targets.data(), 1, 8);
  EXPECT_EQ(model.logits(), nullptr);
}

}  // namespace
}  // namespace rw
