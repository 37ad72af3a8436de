// BPT under context and tensor parallelism: on every tp x cp grid that fills MPI_COMM_WORLD (1, 2
// or 4 ranks), the model with blockwise MLPs and loss, each rank holding its zigzag part of every
// row and its tp shards, matches the unblocked single-process model on the same global batch
// (computed by every rank itself): the loss, and every gradient summed over cp and gathered over
// tp to its logical shape. Blocks of one row and of a size that divides no rank's row count.
//
// Tolerances as in dist_tensor_parallel_test and models_bpt_test: the ranks and the blocks sum
// weight gradients in another order than one GEMM over the whole batch (float rounding, relative
// 1e-6 and below); 1e-5 on the loss and gradient norm and 1e-4 (max |diff| / max |reference| per
// tensor) on gradients leave no room for a block cut from the wrong rows or a missing sum.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "dist/data_parallel.h"
#include "models/llama.h"
#include "tests/dist_model_test_support.h"

namespace rw {
namespace {

using test::kSeq;

// Heads, KV heads, ffn and vocabulary that split over 1, 2 or 4 tp ranks; tied embeddings, so the
// vocabulary-parallel LM head is the embedding.
LlamaConfig bpt_model() {
  LlamaConfig c = LlamaConfig::preset("tiny");
  c.n_kv_heads = 4;
  c.vocab_size = 128;
  c.tied_embeddings = true;
  c.max_seq = kSeq;
  return c;
}

struct BptGrid {
  int tp, cp, bpt_rows;
};
void PrintTo(const BptGrid& g, std::ostream* os) { *os << "tp" << g.tp << " cp" << g.cp << " block " << g.bpt_rows; }

class BptGridTest : public testing::TestWithParam<BptGrid> {};

TEST_P(BptGridTest, LossAndGradientsMatchTheUnblockedSingleProcess) {
  const BptGrid c = GetParam();
  if (c.tp * c.cp != make_mpi_world()->size()) GTEST_SKIP() << "the grid does not fill the world";
  test::GridRank rank(bpt_model(), GridSizes{1, c.tp, c.cp, 1}, DataParallelOptions{}, 4);
  rank.model.set_bpt_block(c.bpt_rows);
  test::Reference ref(bpt_model(), 4, 4);
  test::expect_first_step_matches(rank, ref, 1e-5);
  for (const ParamInfo& p : rank.model.params().entries()) {
    const std::vector<float> g = rank.logical(p, rank.model.grad_buffer().data<float>());
    EXPECT_LE(test::relative_error(g.data(), ref.model.grad(p.name), g.size()), 1e-4) << p.name;
  }
}

// Local rows: 32 / cp, so blocks of 5 leave a partial block on every grid.
INSTANTIATE_TEST_SUITE_P(
    Grids, BptGridTest,
    testing::Values(BptGrid{1, 1, 1}, BptGrid{1, 1, 5}, BptGrid{1, 2, 1}, BptGrid{1, 2, 5}, BptGrid{2, 1, 5},
                    BptGrid{1, 4, 5}, BptGrid{2, 2, 1}, BptGrid{2, 2, 5}, BptGrid{4, 1, 5}),
    [](const testing::TestParamInfo<BptGrid>& i) {
      return "tp" + std::to_string(i.param.tp) + "_cp" + std::to_string(i.param.cp) + "_block" +
             std::to_string(i.param.bpt_rows);
    });

}  // namespace
}  // namespace rw
