// A model with an MoE layer (4 experts, top-2) on every grid of dp, tp, cp and ep that fills the
// world (1, 2 or 4 ranks), trained as the trainer does (tests/dist_model_test_support.h: the loss
// weighted by target share, gradients reduced in buckets during the backward pass over the
// replica groups, or ZeRO-1), against one process on the same global batch: loss, gradient norm,
// every gradient, then a 10-step AdamW curve and the final weights.
//
// Like with like: each dp rank routes its own rows (capacity and aux losses are per dp rank, as
// with gradient accumulation), so the reference runs one micro-batch per dp rank; ep and tp route
// exactly as one process does, so those grids run with capacity drops; cp fills capacity per cp
// rank, so grids with cp run with a capacity factor at which nothing drops (the drop accounting
// under cp is dist_expert_parallel_test's).
//
// Tolerances: loss 1e-5 relative, gradients and norm 1e-4 (max |diff| / max |reference| per
// tensor): the layouts differ from one process only in the order of float sums (near 1e-6); a
// token routed to the wrong expert, a gradient summed over the wrong group or a missed bucket is
// off by O(1).
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/data_parallel.h"
#include "dist/mpi_runtime.h"
#include "dist/process_grid.h"
#include "models/adamw.h"
#include "models/llama.h"
#include "tests/dist_model_test_support.h"

namespace rw {
namespace {

using test::hyper;
using test::kSeq;
using test::relative_error;

struct Layout {
  GridSizes sizes;  // dp, tp, cp, ep
  bool zero1;
  const char* name;
};
void PrintTo(const Layout& l, std::ostream* os) { *os << l.name; }

// Layer 0 dense, layer 1 four experts: gradient buckets meet both kinds of tensor. Aux and z
// coefficients large enough that their gradients count.
LlamaConfig moe_model(const Layout& l) {
  LlamaConfig c = LlamaConfig::preset("tiny");
  c.vocab_size = 64;
  c.max_seq = kSeq;
  c.ffn_dim = 16;
  c.moe_experts = 4;
  c.moe_every = 2;
  c.moe_aux_coef = 0.3f;
  c.moe_z_coef = 0.2f;
  c.moe_capacity_factor = l.sizes.cp > 1 ? 4.0f : 1.0f;
  return c;
}

// One process, routing each dp rank's rows on their own.
struct Reference : test::Reference {
  explicit Reference(const Layout& l) : test::Reference(moe_model(l), 4, 4) { groups = l.sizes.dp; }
};

class MoeLayouts : public testing::TestWithParam<Layout> {
 protected:
  void SetUp() override {
    if (GetParam().sizes.product() != world_size()) GTEST_SKIP() << "the grid does not fill the world";
  }
};

TEST_P(MoeLayouts, LossNormAndEveryGradientMatchOneProcess) {
  test::GridRank rank(moe_model(GetParam()), GetParam().sizes, DataParallelOptions{2048, GetParam().zero1}, 4);
  Reference ref(GetParam());
  test::expect_first_step_matches(rank, ref, 1e-4);
  if (ref.groups == 1) {
    EXPECT_NEAR(rank.model.moe_aux_loss(), ref.model.moe_aux_loss(), 1e-6);
    EXPECT_EQ(rank.model.moe_dropped(), ref.model.moe_dropped());
  }
  if (GetParam().sizes.cp == 1) {
    EXPECT_GT(ref.model.moe_dropped(), 0) << "the case must exercise capacity drops";
  }
  // ZeRO-1 leaves only this rank's shard reduced in the full buffer, so compare the plain mode.
  if (GetParam().zero1) return;
  for (const ParamInfo& p : rank.model.params().entries()) {
    const std::vector<float> g = rank.logical(p, rank.model.grad_buffer().data<float>());
    EXPECT_LE(relative_error(g.data(), ref.model.grad(p.name), g.size()), 1e-4) << p.name;
  }
}

// Ten AdamW steps with clipping: the loss curve and the final weights (this rank's) match.
TEST_P(MoeLayouts, TenStepsFollowTheSameLossCurve) {
  test::GridRank rank(moe_model(GetParam()), GetParam().sizes, DataParallelOptions{2048, GetParam().zero1}, 4);
  Reference ref(GetParam());
  AdamW adam(rank.model.params(), hyper()), ref_adam(ref.model.params(), hyper());
  ASSERT_NO_FATAL_FAILURE(test::run_ten_steps(rank, ref, adam, ref_adam, GetParam().zero1));
  for (const ParamInfo& p : rank.model.params().entries()) {
    const std::vector<float> w = rank.logical(p, rank.model.param_buffer().data<float>());
    EXPECT_LE(relative_error(w.data(), ref.model.param(p.name), w.size()), 1e-4) << p.name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Grids, MoeLayouts,
    testing::Values(Layout{{1, 1, 1, 1}, false, "one_process"}, Layout{{1, 1, 2, 1}, false, "cp2"},
                    Layout{{1, 2, 1, 1}, false, "tp2"}, Layout{{1, 1, 1, 2}, true, "ep2_zero1"},
                    Layout{{2, 1, 2, 1}, false, "dp2_cp2"}, Layout{{2, 1, 1, 2}, false, "ep2_dp2"},
                    Layout{{2, 1, 1, 2}, true, "ep2_dp2_zero1"}, Layout{{1, 2, 1, 2}, false, "tp2_ep2"},
                    Layout{{1, 1, 2, 2}, false, "cp2_ep2"}),
    [](const testing::TestParamInfo<Layout>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace rw
