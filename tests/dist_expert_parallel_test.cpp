// The MoE block, and the whole model with MoE layers, with their experts sharded over every rank
// (expert parallelism) against the same run by one process on the ranks' tokens concatenated:
// every rank computes that reference itself from the same seeds and compares its rows of the
// output and input gradient, its experts' gradients, the replicated parameters' gradients summed
// over the ranks, the loss and the routing statistics.
//
// Tolerance: relative 1e-5 (normwise per tensor). Both runs do the same float arithmetic per row;
// only the router gradient is summed over the ranks in another order (roundings near 1e-7). A
// token sent to the wrong rank, a capacity slot counted without the earlier ranks' tokens or a
// missing return hop is off by far more.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/random.h"
#include "dist/communicator.h"
#include "dist/expert_parallel.h"
#include "models/llama.h"
#include "models/moe.h"
#include "tests/dist_model_test_support.h"

namespace rw {
namespace {

constexpr double kTol = 1e-5;

using test::relative_error;  // normwise: max |diff| / max |reference|

std::vector<float> random_values(size_t n, float scale, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = scale * rng.normal();
  return v;
}

std::string expert_name(int e, const char* proj) {
  return "model.layers.0.mlp.experts." + std::to_string(e) + "." + proj + ".weight";
}

// The block's parameters as the model lays them out: the router, then the experts held here.
ParamTable moe_table(const MoeConfig& cfg, int first, int count) {
  ParamTable t;
  t.add("model.layers.0.mlp.gate.weight", {cfg.n_experts, cfg.d_model}, true);
  for (int e = first; e < first + count; ++e) {
    t.add(expert_name(e, "gate_proj"), {cfg.ffn_dim, cfg.d_model}, true);
    t.add(expert_name(e, "up_proj"), {cfg.ffn_dim, cfg.d_model}, true);
    t.add(expert_name(e, "down_proj"), {cfg.d_model, cfg.ffn_dim}, true);
  }
  return t;
}

MoeWeights bind(const ParamTable& t, int first, int count, float* base) {
  MoeWeights w{base + t.at("model.layers.0.mlp.gate.weight").offset, {}};
  for (int e = first; e < first + count; ++e)
    w.experts.push_back({base + t.at(expert_name(e, "gate_proj")).offset, base + t.at(expert_name(e, "up_proj")).offset,
                         base + t.at(expert_name(e, "down_proj")).offset});
  return w;
}

// 8 features, 4 experts of width 6, top-2, aux and z coefficients large enough to count.
MoeConfig small_block(float capacity_factor) {
  MoeConfig cfg;
  cfg.d_model = 8;
  cfg.ffn_dim = 6;
  cfg.n_experts = 4;
  cfg.top_k = 2;
  cfg.capacity_factor = capacity_factor;
  cfg.aux_coef = 0.3f;
  cfg.z_coef = 0.2f;
  return cfg;
}

void check_against_one_process(float capacity_factor) {
  std::unique_ptr<Communicator> world = make_mpi_world();
  const int P = world->size(), r = world->rank(), N = 10;
  const MoeConfig cfg = small_block(capacity_factor);
  const int C = cfg.d_model, E = cfg.n_experts;

  // The reference: one process, every expert, all P * N tokens.
  const ParamTable full = moe_table(cfg, 0, E);
  std::vector<float> params = random_values(full.total(), 0.5f, 7);
  std::vector<float> x = random_values(static_cast<size_t>(P) * N * C, 1.0f, 8);
  std::vector<float> dout = random_values(x.size(), 1.0f, 9);
  std::vector<float> y_ref(x.size()), dx_ref(x.size(), 0.0f), g_ref(full.total(), 0.0f);
  MoeLayer single(cfg);
  single.forward(y_ref.data(), x.data(), bind(full, 0, E, params.data()), P * N);
  single.backward(dx_ref.data(), bind(full, 0, E, g_ref.data()), dout.data(),
                  bind(full, 0, E, params.data()));

  // This rank: its N tokens and its experts.
  const ExpertShard shard = expert_shard(E, P, r);
  const ParamTable local = moe_table(cfg, shard.first, shard.count);
  std::vector<float> lp(local.total()), lg(local.total(), 0.0f);
  for (const ParamInfo& p : local.entries())
    std::copy_n(&params[full.at(p.name).offset], p.numel(), &lp[p.offset]);
  const size_t rows = static_cast<size_t>(N) * C, mine = r * rows;
  std::vector<float> y(rows), dx(rows, 0.0f);
  MoeLayer ep(cfg, world.get());
  ASSERT_EQ(ep.first_expert(), shard.first);
  const MoeWeights w = bind(local, shard.first, shard.count, lp.data());
  ep.forward(y.data(), &x[mine], w, N);
  ep.backward(dx.data(), bind(local, shard.first, shard.count, lg.data()), &dout[mine], w);
  allreduce_replicated_grads(*world, local, lg.data());

  EXPECT_LT(relative_error(y.data(), &y_ref[mine], rows), kTol) << "output, rank " << r;
  EXPECT_LT(relative_error(dx.data(), &dx_ref[mine], rows), kTol) << "input gradient, rank " << r;
  for (const ParamInfo& p : local.entries())
    EXPECT_LT(relative_error(&lg[p.offset], &g_ref[full.at(p.name).offset], p.numel()), kTol)
        << p.name << ", rank " << r;
  EXPECT_EQ(ep.stats().load, single.stats().load);
  EXPECT_EQ(ep.stats().dropped, single.stats().dropped);
  EXPECT_EQ(ep.stats().capacity, single.stats().capacity);
  // The router logits come from sgemm over another number of rows: float roundings, 1e-8 relative.
  EXPECT_NEAR(ep.stats().aux_loss, single.stats().aux_loss, 1e-6);
  EXPECT_NEAR(ep.stats().z_loss, single.stats().z_loss, 1e-6 * (1 + single.stats().z_loss));
  if (capacity_factor < 1) {
    EXPECT_GT(single.stats().dropped, 0) << "the case must exercise capacity drops";
  }
}

TEST(ExpertParallel, MatchesOneProcessWithCapacityDrops) { check_against_one_process(0.5f); }

TEST(ExpertParallel, MatchesOneProcessWithoutDrops) { check_against_one_process(4.0f); }

// Context parallelism: every rank holds its own part of the tokens and all the experts. Capacity
// is per rank, so the output and the drops are those of one process on the rank's tokens alone;
// the load and the aux and z losses are those of one process on all the tokens.
TEST(ExpertParallel, ContextParallelStatisticsCoverEveryRank) {
  std::unique_ptr<Communicator> world = make_mpi_world();
  const int P = world->size(), r = world->rank(), N = 10;
  const MoeConfig cfg = small_block(0.5f);
  const int C = cfg.d_model, E = cfg.n_experts;
  const ParamTable table = moe_table(cfg, 0, E);
  std::vector<float> params = random_values(table.total(), 0.5f, 7);
  const MoeWeights w = bind(table, 0, E, params.data());
  std::vector<float> x = random_values(static_cast<size_t>(P) * N * C, 1.0f, 8);
  const size_t rows = static_cast<size_t>(N) * C, mine = r * rows;

  std::vector<float> y_all(x.size()), y_alone(rows), y(rows);
  MoeLayer all(cfg), alone(cfg), part(cfg);
  all.forward(y_all.data(), x.data(), w, P * N);
  alone.forward(y_alone.data(), &x[mine], w, N);
  part.set_context_parallel(world.get());
  part.forward(y.data(), &x[mine], w, N);

  EXPECT_LT(relative_error(y.data(), y_alone.data(), rows), 1e-6) << "rank " << r;
  EXPECT_EQ(part.stats().capacity, alone.stats().capacity);
  double dropped = static_cast<double>(alone.stats().dropped);
  world->allreduce(&dropped, 1);
  EXPECT_EQ(part.stats().dropped, static_cast<long long>(dropped));
  EXPECT_GT(dropped, 0) << "the case must exercise capacity drops";
  EXPECT_EQ(part.stats().load, all.stats().load);
  EXPECT_NEAR(part.stats().aux_loss, all.stats().aux_loss, 1e-6);
  EXPECT_NEAR(part.stats().z_loss, all.stats().z_loss, 1e-6 * (1 + all.stats().z_loss));
}

TEST(ExpertParallel, ShardsExpertsEvenly) {
  EXPECT_EQ(expert_shard(8, 4, 3).first, 6);
  EXPECT_EQ(expert_shard(8, 4, 3).count, 2);
  EXPECT_THROW(expert_shard(6, 4, 0), UserError);
  EXPECT_TRUE(is_expert_param("model.layers.3.mlp.experts.7.down_proj.weight"));
  EXPECT_FALSE(is_expert_param("model.layers.3.mlp.gate.weight"));
}

// The whole model: each rank trains on its rows of the global batch, weighting its loss by its
// share of the targets as the trainer does; one process runs the global batch.
TEST(ExpertParallel, ModelMatchesOneProcessOnTheGlobalBatch) {
  std::unique_ptr<Communicator> world = make_mpi_world();
  const int P = world->size(), r = world->rank(), B = 2, T = 8;
  LlamaConfig cfg = LlamaConfig::preset("tiny");
  cfg.vocab_size = 32;
  cfg.ffn_dim = 16;
  cfg.moe_experts = 4;
  cfg.moe_capacity_factor = 1.0f;  // drops some assignments
  cfg.moe_aux_coef = 0.3f;
  cfg.moe_z_coef = 0.2f;
  Rng rng(17);
  std::vector<int32_t> tokens(static_cast<size_t>(P) * B * T), targets(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    tokens[i] = static_cast<int32_t>(rng.next_u64() % cfg.vocab_size);
    targets[i] = static_cast<int32_t>(rng.next_u64() % cfg.vocab_size);
  }
  LlamaModel single(cfg);
  single.init_weights(5);
  const float want = single.forward(tokens.data(), targets.data(), P * B, T);
  single.backward();

  LlamaModel ep(cfg, 64, 64, nullptr, world.get());
  ep.init_weights(5);
  for (const ParamInfo& p : ep.params().entries())
    ASSERT_EQ(relative_error(ep.param(p.name), single.param(p.name), p.numel()), 0) << "initial " << p.name;
  const size_t mine = static_cast<size_t>(r) * B * T;
  double loss = ep.forward(&tokens[mine], &targets[mine], B, T) / static_cast<double>(P);
  world->allreduce(&loss, 1);
  ep.backward(1.0f / P);
  allreduce_replicated_grads(*world, ep.params(), ep.grad_buffer().data<float>());

  EXPECT_NEAR(loss, want, kTol * want) << "rank " << r;
  EXPECT_NEAR(ep.moe_aux_objective(), single.moe_aux_objective(), 1e-6);
  EXPECT_EQ(ep.moe_dropped(), single.moe_dropped());
  for (const ParamInfo& p : ep.params().entries())
    EXPECT_LT(relative_error(ep.grad(p.name), single.grad(p.name), p.numel()), kTol) << p.name << ", rank " << r;
}

}  // namespace
}  // namespace rw
