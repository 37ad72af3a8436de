// Tensor parallelism (Megatron) equals one process: the sharded linears and the vocabulary-parallel
// embedding and cross-entropy against their unsharded ops, then the whole model on tp, tp x dp
// (plain and ZeRO-1) and tp x cp grids of MPI_COMM_WORLD (1, 2 or 4 ranks; a grid that does not
// fill the world is skipped) against a single-process model on the same global batch, computed
// by every rank itself: loss, every gradient gathered to its logical shape, the gradient norm, and
// ten AdamW steps.
//
// Tolerances: the tp ranks sum partial products that the reference sums inside one GEMM, and the
// cross-entropy sums exp() in double across ranks; the differences are float roundings (relative
// 1e-6 and below). 1e-5 on losses and norms and 1e-4 (max |diff| / max |reference| per tensor) on
// gradients and weights leave room for that and none for a missing allreduce (off by O(1)).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>
#include <vector>

#include "core/ops.h"
#include "core/random.h"
#include "dist/communicator.h"
#include "dist/data_parallel.h"
#include "dist/process_grid.h"
#include "dist/ring_attention.h"
#include "dist/zigzag.h"
#include "models/adamw.h"
#include "models/llama.h"
#include "models/vocab_parallel.h"
#include "tests/dist_model_test_support.h"

namespace rw {
namespace {

using test::hyper;
using test::kSeq;

using test::relative_error;

std::vector<float> random_values(size_t n, uint64_t stream) {
  Rng rng(3, stream);
  std::vector<float> x(n);
  for (float& v : x) v = rng.normal();
  return x;
}

// This rank's column block of an [R, Cn] matrix (how the tp ranks split activations).
std::vector<float> column_block(const std::vector<float>& full, int R, int Cn, Communicator& tp) {
  ParamTable t(tp.size(), tp.rank());
  t.add("x", {R, Cn}, false, ShardRule::SplitCols);
  std::vector<float> local(t.at("x").numel());
  slice_shard(t.at("x"), full.data(), local.data());
  return local;
}

// ---- the sharded linears against the unsharded one (tp = every rank of the world)

TEST(TensorParallelLinear, ColumnParallelMatchesTheUnshardedLinear) {
  std::unique_ptr<Communicator> tp = make_mpi_world();
  const int N = 5, IC = 8, OC = 12;
  ParamTable table(tp->size(), tp->rank());
  table.add("w", {OC, IC}, true, ShardRule::SplitRows);
  const ParamInfo& p = table.at("w");
  const std::vector<float> w = random_values(OC * IC, 0), x = random_values(N * IC, 1), dy = random_values(N * OC, 2);
  std::vector<float> y(N * OC), dx(N * IC, 0.0f), dw(OC * IC, 0.0f);
  cpu::linear_forward(y.data(), x.data(), w.data(), N, IC, OC);
  cpu::linear_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), N, IC, OC);

  const int OCl = OC / tp->size();
  std::vector<float> wl(p.numel()), yl(N * OCl), dxl(N * IC, 0.0f), dwl(p.numel(), 0.0f), want_dwl(p.numel());
  slice_shard(p, w.data(), wl.data());
  cpu::linear_forward(yl.data(), x.data(), wl.data(), N, IC, OCl);
  // Each rank's output is its block of output features; its input gradient a partial sum.
  const std::vector<float> want_yl = column_block(y, N, OC, *tp), dyl = column_block(dy, N, OC, *tp);
  EXPECT_LE(relative_error(yl.data(), want_yl.data(), yl.size()), 1e-6);
  cpu::linear_backward(dxl.data(), dwl.data(), dyl.data(), x.data(), wl.data(), N, IC, OCl);
  tp->allreduce(dxl.data(), dxl.size());
  EXPECT_LE(relative_error(dxl.data(), dx.data(), dx.size()), 1e-5);
  slice_shard(p, dw.data(), want_dwl.data());
  EXPECT_LE(relative_error(dwl.data(), want_dwl.data(), dwl.size()), 1e-6);
}

TEST(TensorParallelLinear, RowParallelMatchesTheUnshardedLinear) {
  std::unique_ptr<Communicator> tp = make_mpi_world();
  const int N = 5, IC = 12, OC = 8;
  ParamTable table(tp->size(), tp->rank());
  table.add("w", {OC, IC}, true, ShardRule::SplitCols);
  const ParamInfo& p = table.at("w");
  const std::vector<float> w = random_values(OC * IC, 3), x = random_values(N * IC, 4), dy = random_values(N * OC, 5);
  std::vector<float> y(N * OC), dx(N * IC, 0.0f), dw(OC * IC, 0.0f);
  cpu::linear_forward(y.data(), x.data(), w.data(), N, IC, OC);
  cpu::linear_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), N, IC, OC);

  const int ICl = IC / tp->size();
  std::vector<float> wl(p.numel()), yl(N * OC), dxl(N * ICl, 0.0f), dwl(p.numel(), 0.0f), want_dwl(p.numel());
  slice_shard(p, w.data(), wl.data());
  // The input arrives split by features (a column-parallel linear's output); the partial outputs sum.
  const std::vector<float> xl = column_block(x, N, IC, *tp), want_dxl = column_block(dx, N, IC, *tp);
  cpu::linear_forward(yl.data(), xl.data(), wl.data(), N, ICl, OC);
  tp->allreduce(yl.data(), yl.size());
  EXPECT_LE(relative_error(yl.data(), y.data(), y.size()), 1e-5);
  cpu::linear_backward(dxl.data(), dwl.data(), dy.data(), xl.data(), wl.data(), N, ICl, OC);
  EXPECT_LE(relative_error(dxl.data(), want_dxl.data(), dxl.size()), 1e-6);
  slice_shard(p, dw.data(), want_dwl.data());
  EXPECT_LE(relative_error(dwl.data(), want_dwl.data(), dwl.size()), 1e-6);
}

TEST(TensorParallelVocab, EmbeddingAndCrossEntropyMatchTheUnshardedOps) {
  std::unique_ptr<Communicator> tp = make_mpi_world();
  const int N = 7, C = 4, V = 16, Vl = V / tp->size(), v0 = tp->rank() * Vl;
  std::vector<int32_t> tokens(N), targets(N);
  for (int n = 0; n < N; ++n) {
    tokens[n] = static_cast<int32_t>(hash_keys(1, n) % V);
    targets[n] = n == 2 ? -1 : static_cast<int32_t>(hash_keys(2, n) % V);
  }
  // Embedding: lookup and gradient rows.
  const std::vector<float> wte = random_values(V * C, 6), dout = random_values(N * C, 7);
  std::vector<float> out(N * C), dwte(V * C, 0.0f), out_tp(N * C), dwte_tp(Vl * C, 0.0f);
  cpu::embedding_forward(out.data(), tokens.data(), wte.data(), N, C);
  cpu::embedding_backward(dwte.data(), dout.data(), tokens.data(), N, C);
  vocab_parallel_embedding_forward(out_tp.data(), tokens.data(), wte.data() + v0 * C, N, C, v0, Vl, *tp);
  vocab_parallel_embedding_backward(dwte_tp.data(), dout.data(), tokens.data(), N, C, v0, Vl);
  EXPECT_EQ(out_tp, out);
  EXPECT_LE(relative_error(dwte_tp.data(), dwte.data() + v0 * C, dwte_tp.size()), 1e-6);

  // Cross-entropy: loss and log-sum-exp per row, and the local block of the logits' gradient.
  std::vector<float> logits = random_values(N * V, 8);
  for (float& x : logits) x *= 4;  // rows whose maxima sit on different ranks
  std::vector<float> loss(N), lse(N), dlogits(N * V, 0.0f), loss_tp(N), lse_tp(N), dlogits_tp(N * Vl, 0.0f);
  cpu::cross_entropy_forward(loss.data(), lse.data(), logits.data(), targets.data(), N, V);
  cpu::cross_entropy_backward(dlogits.data(), logits.data(), lse.data(), targets.data(), 0.5f, N, V);
  const std::vector<float> logits_l = column_block(logits, N, V, *tp), want_dl = column_block(dlogits, N, V, *tp);
  vocab_parallel_cross_entropy_forward(loss_tp.data(), lse_tp.data(), logits_l.data(), targets.data(), N, v0, Vl, *tp);
  vocab_parallel_cross_entropy_backward(dlogits_tp.data(), logits_l.data(), lse_tp.data(), targets.data(), 0.5f, N, v0,
                                        Vl);
  EXPECT_LE(relative_error(loss_tp.data(), loss.data(), N), 1e-5);
  EXPECT_LE(relative_error(lse_tp.data(), lse.data(), N), 1e-5);
  EXPECT_LE(relative_error(dlogits_tp.data(), want_dl.data(), dlogits_tp.size()), 1e-5);
}

// ---- the whole model

// 8 heads over 4 KV heads (GQA) and an FFN and vocabulary that split over 1, 2 or 4 tp ranks.
LlamaConfig tp_model() {
  LlamaConfig c = LlamaConfig::preset("tiny");
  c.vocab_size = 64;
  c.n_heads = 8;
  c.n_kv_heads = 4;
  c.ffn_dim = 48;
  c.max_seq = kSeq;
  return c;
}

struct GridCase {
  int dp, tp, cp;
  bool zero1;
  const char* name;
};
void PrintTo(const GridCase& c, std::ostream* os) { *os << c.name; }

// One rank of the case's grid.
struct GridRank : test::GridRank {
  explicit GridRank(const GridCase& c)
      : test::GridRank(tp_model(), GridSizes{c.dp, c.tp, c.cp, 1}, DataParallelOptions{4096, c.zero1}, 4) {}
};

// The single-process reference on the whole global batch.
struct Reference : test::Reference {
  Reference() : test::Reference(tp_model(), 4, 4) {}
};

class TensorParallelModel : public testing::TestWithParam<GridCase> {
 protected:
  void SetUp() override {
    const GridCase& c = GetParam();
    if (c.dp * c.tp * c.cp != make_mpi_world()->size()) GTEST_SKIP() << "the grid does not fill the world";
  }
};

TEST_P(TensorParallelModel, LossGradientsAndNormMatchOneProcess) {
  GridRank rank(GetParam());
  Reference ref;
  test::expect_first_step_matches(rank, ref, 1e-5);
  // ZeRO-1 leaves only this rank's shard reduced in the full buffer, so compare the plain mode.
  if (GetParam().zero1) return;
  Communicator& tp = rank.grid.tp();
  for (const ParamInfo& p : rank.model.params().entries()) {
    const std::vector<float> g = rank.logical(p, rank.model.grad_buffer().data<float>());
    EXPECT_LE(relative_error(g.data(), ref.model.grad(p.name), g.size()), 1e-4) << p.name;
    if (p.split()) continue;
    // A replicated (norm) weight's gradient is the same, bit for bit, on every tp rank.
    std::vector<float> first(rank.model.grad(p.name), rank.model.grad(p.name) + p.numel());
    tp.broadcast(first.data(), first.size() * sizeof(float), 0);
    EXPECT_EQ(std::memcmp(first.data(), rank.model.grad(p.name), first.size() * sizeof(float)), 0) << p.name;
  }
}

// Ten AdamW steps with clipping: the loss curve and the final (gathered) weights match.
TEST_P(TensorParallelModel, TenStepsFollowTheSameLossCurve) {
  GridRank rank(GetParam());
  Reference ref;
  AdamW adam(rank.model.params(), hyper()), ref_adam(ref.model.params(), hyper());
  ASSERT_NO_FATAL_FAILURE(test::run_ten_steps(rank, ref, adam, ref_adam, GetParam().zero1));
  for (const ParamInfo& p : rank.model.params().entries()) {
    const std::vector<float> w = rank.logical(p, rank.model.param_buffer().data<float>());
    EXPECT_LE(relative_error(w.data(), ref.model.param(p.name), w.size()), 1e-4) << p.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Grids, TensorParallelModel,
                         testing::Values(GridCase{1, 1, 1, false, "tp1"}, GridCase{1, 2, 1, false, "tp2"},
                                         GridCase{1, 4, 1, false, "tp4"}, GridCase{2, 2, 1, false, "tp2_dp2"},
                                         GridCase{2, 2, 1, true, "tp2_dp2_zero1"}, GridCase{1, 2, 2, false, "tp2_cp2"}),
                         [](const testing::TestParamInfo<GridCase>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace rw
