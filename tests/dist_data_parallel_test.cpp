// Data parallelism equals one process on the whole global batch: each rank of MPI_COMM_WORLD (1, 2
// or 4) trains on its rows [r*B, (r+1)*B) of the same seeded global batch of 4 rows, while a
// second, single-process model in the same test process runs the full batch as the reference.
//
// Tolerances: the ranks sum per-rank partial gradients that the reference sums inside its GEMMs,
// a different float summation order (relative differences near 1e-6); 1e-5 on the loss and 1e-4
// (max |diff| / max |reference| per tensor) on gradients leave room for that and none for a lost
// bucket, a missing rank or a wrong scale, which are off by O(1).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/random.h"
#include "dist/communicator.h"
#include "dist/data_parallel.h"
#include "dist/mpi_runtime.h"
#include "models/adamw.h"
#include "models/llama.h"
#include "tests/dist_model_test_support.h"

namespace rw {
namespace {

using test::hyper;
using test::kSeq;

// The tiny preset with the 64-token vocabulary of global_batch().
LlamaConfig tiny_model() {
  LlamaConfig c = LlamaConfig::preset("tiny");
  c.vocab_size = 64;
  c.max_seq = kSeq;
  return c;
}

// One data-parallel rank of as many as the world holds: its rows of the batch.
struct Rank : test::GridRank {
  explicit Rank(const DataParallelOptions& opts)
      : test::GridRank(tiny_model(), GridSizes{world_size(), 1, 1, 1}, opts) {}
};

// The single-process reference on the whole global batch.
struct Reference : test::Reference {
  Reference() : test::Reference(tiny_model()) {}
};

void expect_same_gradients(LlamaModel& dp, LlamaModel& ref) {
  for (const ParamInfo& p : ref.params().entries()) {
    const float* g = dp.grad(p.name);
    const float* r = ref.grad(p.name);
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < p.numel(); ++i) {
      max_diff = std::max(max_diff, std::fabs(static_cast<double>(g[i]) - r[i]));
      max_ref = std::max(max_ref, std::fabs(static_cast<double>(r[i])));
    }
    EXPECT_LE(max_diff, 1e-4 * max_ref) << p.name;
  }
}

class DataParallelEquivalence : public testing::TestWithParam<bool> {};  // the parameter: ZeRO-1

TEST_P(DataParallelEquivalence, LossAndEveryGradientMatchOneProcess) {
  // Buckets of 2 KB: many per layer, so that bucket edges cut across tensors.
  Rank rank(DataParallelOptions{2048, GetParam()});
  Reference ref;
  test::expect_first_step_matches(rank, ref, 1e-4);
  // ZeRO-1 leaves only this rank's shard reduced in the full buffer, so compare the plain mode.
  if (!GetParam()) expect_same_gradients(rank.model, ref.model);
}

// Ten AdamW steps with clipping: the loss curve and the final weights match the single process.
TEST_P(DataParallelEquivalence, TenStepsFollowTheSameLossCurve) {
  Rank rank(DataParallelOptions{4096, GetParam()});
  Reference ref;
  AdamW dp_adam(rank.model.params(), hyper()), ref_adam(ref.model.params(), hyper());
  ASSERT_NO_FATAL_FAILURE(test::run_ten_steps(rank, ref, dp_adam, ref_adam, GetParam()));
  // Every rank must hold the same weights (ZeRO-1's allgather) close to the reference's.
  const float* w = rank.model.param_buffer().data<float>();
  const float* r = ref.model.param_buffer().data<float>();
  double max_diff = 0;
  for (size_t i = 0; i < ref.model.params().total(); ++i) max_diff = std::max(max_diff, std::fabs(double(w[i]) - r[i]));
  EXPECT_LE(max_diff, 1e-4);
  if (!GetParam()) return;
  // The sharded moments gathered for a checkpoint are the single process's full ones.
  const size_t total = ref.model.params().total();
  std::vector<float> m(total), v(total);
  EXPECT_EQ(rank.dp.gather_zero1_state(m.data(), v.data()), ref_adam.steps_taken());
  const float* ref_m = ref_adam.exp_avg().data<float>();
  const float* ref_v = ref_adam.exp_avg_sq().data<float>();
  double m_diff = 0, m_max = 0, v_diff = 0, v_max = 0;
  for (size_t i = 0; i < total; ++i) {
    m_diff = std::max(m_diff, std::fabs(double(m[i]) - ref_m[i]));
    m_max = std::max(m_max, std::fabs(double(ref_m[i])));
    v_diff = std::max(v_diff, std::fabs(double(v[i]) - ref_v[i]));
    v_max = std::max(v_max, std::fabs(double(ref_v[i])));
  }
  EXPECT_LE(m_diff, 1e-4 * m_max);
  EXPECT_LE(v_diff, 1e-4 * v_max);
  // A resumed run's shards come back from the full moments unchanged.
  Rank resumed(DataParallelOptions{4096, true});
  resumed.dp.load_zero1_state(m.data(), v.data(), 10);
  std::vector<float> m2(total), v2(total);
  EXPECT_EQ(resumed.dp.gather_zero1_state(m2.data(), v2.data()), 10);
  EXPECT_EQ(m2, m);
  EXPECT_EQ(v2, v);
}

INSTANTIATE_TEST_SUITE_P(Modes, DataParallelEquivalence, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& i) { return i.param ? "Zero1" : "Plain"; });

}  // namespace
}  // namespace rw
