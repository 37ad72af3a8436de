// The MoE block against a naive double-precision implementation written here (routing, capacity
// drops, combine, both aux losses), and its backward against central finite differences of that
// reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/random.h"
#include "models/llama.h"
#include "models/moe.h"

namespace rw {
namespace {

// Parameters laid out flat: router (E, C), then per expert gate (F, C), up (F, C), down (C, F).
struct Layout {
  int C, F, E;
  size_t router() const { return 0; }
  size_t expert(int e) const { return static_cast<size_t>(E) * C + static_cast<size_t>(e) * 3 * F * C; }
  size_t total() const { return expert(E); }
};

struct Reference {
  std::vector<double> y;  // (N, C)
  double aux = 0, z = 0, objective = 0;
  long long dropped = 0;
  std::vector<long long> load;
};

// objective = sum(r * y) + aux_coef * aux + z_coef * z, every step in double.
Reference naive_moe(const MoeConfig& cfg, const std::vector<double>& p, const std::vector<double>& x,
                    const std::vector<double>& r, int N) {
  const int C = cfg.d_model, F = cfg.ffn_dim, E = cfg.n_experts, K = cfg.top_k;
  const Layout lay{C, F, E};
  Reference ref;
  ref.y.assign(static_cast<size_t>(N) * C, 0.0);
  ref.load.assign(E, 0);
  std::vector<double> prob(static_cast<size_t>(N) * E), pbar(E, 0.0);
  std::vector<std::vector<int>> chosen(N);
  for (int n = 0; n < N; ++n) {
    std::vector<double> logit(E);
    double mx = -1e300;
    for (int e = 0; e < E; ++e) {
      for (int c = 0; c < C; ++c) logit[e] += x[n * C + c] * p[lay.router() + e * C + c];
      mx = std::max(mx, logit[e]);
    }
    double s = 0;
    for (int e = 0; e < E; ++e) s += std::exp(logit[e] - mx);
    const double lse = mx + std::log(s);
    ref.z += lse * lse / N;
    for (int e = 0; e < E; ++e) {
      prob[n * E + e] = std::exp(logit[e] - lse);
      pbar[e] += prob[n * E + e] / N;
    }
    // top-k by sorting expert indices on (probability desc, index asc)
    std::vector<int> order(E);
    for (int e = 0; e < E; ++e) order[e] = e;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return prob[n * E + a] > prob[n * E + b]; });
    chosen[n].assign(order.begin(), order.begin() + K);
    for (int e : chosen[n]) ++ref.load[e];
  }
  const int cap = static_cast<int>(std::ceil(static_cast<double>(cfg.capacity_factor) * N * K / E));
  for (int e = 0; e < E; ++e) {
    ref.aux += E * (static_cast<double>(ref.load[e]) / (N * K)) * pbar[e];
    ref.dropped += std::max(0LL, ref.load[e] - cap);
  }
  // Each expert takes its first `cap` tokens in token order.
  for (int e = 0; e < E; ++e) {
    const double* wg = &p[lay.expert(e)];
    const double* wu = wg + static_cast<size_t>(F) * C;
    const double* wd = wu + static_cast<size_t>(F) * C;
    int taken = 0;
    for (int n = 0; n < N; ++n) {
      if (std::find(chosen[n].begin(), chosen[n].end(), e) == chosen[n].end()) continue;
      if (taken++ >= cap) continue;
      double sel = 0;
      for (int c : chosen[n]) sel += prob[n * E + c];
      const double w = prob[n * E + e] / sel;
      std::vector<double> h(F);
      for (int f = 0; f < F; ++f) {
        double g = 0, u = 0;
        for (int c = 0; c < C; ++c) {
          g += wg[f * C + c] * x[n * C + c];
          u += wu[f * C + c] * x[n * C + c];
        }
        h[f] = g / (1 + std::exp(-g)) * u;
      }
      for (int c = 0; c < C; ++c) {
        double o = 0;
        for (int f = 0; f < F; ++f) o += wd[c * F + f] * h[f];
        ref.y[n * C + c] += w * o;
      }
    }
  }
  for (size_t i = 0; i < ref.y.size(); ++i) ref.objective += r[i] * ref.y[i];
  ref.objective += cfg.aux_coef * ref.aux + cfg.z_coef * ref.z;
  return ref;
}

// Float values (exactly representable) drawn from a seeded stream, kept as doubles for the reference.
std::vector<double> random_values(size_t n, double scale, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(n);
  for (auto& x : v) x = static_cast<float>(scale * rng.normal());
  return v;
}

std::vector<float> to_float(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

MoeWeights bind(const Layout& lay, float* base) {
  MoeWeights w{base + lay.router(), {}};
  for (int e = 0; e < lay.E; ++e) {
    float* g = base + lay.expert(e);
    w.experts.push_back({g, g + static_cast<size_t>(lay.F) * lay.C, g + 2 * static_cast<size_t>(lay.F) * lay.C});
  }
  return w;
}

struct Case {
  MoeConfig cfg;
  int N;
  std::vector<double> params, x, r;
};

Case make_case(float capacity_factor, double r_scale, uint64_t seed) {
  Case k;
  k.cfg.d_model = 6;
  k.cfg.ffn_dim = 5;
  k.cfg.n_experts = 4;
  k.cfg.top_k = 2;
  k.cfg.capacity_factor = capacity_factor;
  k.cfg.aux_coef = 0.3f;  // large, so that the aux gradients are visible next to the output's
  k.cfg.z_coef = 0.2f;
  k.N = 14;
  const Layout lay{6, 5, 4};
  k.params = random_values(lay.total(), 0.5, seed);
  k.x = random_values(static_cast<size_t>(k.N) * 6, 1.0, seed + 1);
  k.r = random_values(k.x.size(), r_scale, seed + 2);
  return k;
}

TEST(MoeLayer, ForwardMatchesNaiveRoutingDropsAndCombine) {
  for (float cf : {0.5f, 1.0f, 4.0f}) {
    Case k = make_case(cf, 1.0, 11);
    const Layout lay{k.cfg.d_model, k.cfg.ffn_dim, k.cfg.n_experts};
    std::vector<float> p = to_float(k.params), x = to_float(k.x), y(k.x.size());
    MoeLayer moe(k.cfg);
    moe.forward(y.data(), x.data(), bind(lay, p.data()), k.N);
    Reference ref = naive_moe(k.cfg, k.params, k.x, k.r, k.N);
    for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], ref.y[i], 1e-4 * (1 + std::fabs(ref.y[i]))) << i;
    EXPECT_NEAR(moe.stats().aux_loss, ref.aux, 1e-5);
    EXPECT_NEAR(moe.stats().z_loss, ref.z, 1e-5 * (1 + ref.z));
    EXPECT_EQ(moe.stats().dropped, ref.dropped);
    EXPECT_EQ(moe.stats().load, ref.load);
    if (cf == 0.5f) {
      EXPECT_GT(ref.dropped, 0) << "the case must exercise capacity drops";
    }
    if (cf == 4.0f) {
      EXPECT_EQ(ref.dropped, 0);
    }
  }
}

TEST(MoeLayer, TiesGoToTheLowerExpertIndex) {
  // A zero router gives every expert probability 1/E: experts 0 and 1 win, each weighted 1/2.
  Case k = make_case(8.0f, 1.0, 5);
  const Layout lay{k.cfg.d_model, k.cfg.ffn_dim, k.cfg.n_experts};
  std::fill(k.params.begin(), k.params.begin() + lay.expert(0), 0.0);
  std::vector<float> p = to_float(k.params), x = to_float(k.x), y(k.x.size());
  MoeLayer moe(k.cfg);
  moe.forward(y.data(), x.data(), bind(lay, p.data()), k.N);
  EXPECT_EQ(moe.stats().load, (std::vector<long long>{k.N, k.N, 0, 0}));
  EXPECT_NEAR(moe.stats().aux_loss, 1.0, 1e-6);  // E * sum (1/2 * 1/4) over two experts
  EXPECT_NEAR(moe.stats().z_loss, std::log(4.0) * std::log(4.0), 1e-6);
}

// Every gradient (input, router, every expert matrix) against central differences of the naive
// objective; eps is small enough that no perturbation changes a top-k choice on this input.
void check_gradients(const Case& k) {
  const Layout lay{k.cfg.d_model, k.cfg.ffn_dim, k.cfg.n_experts};
  std::vector<float> p = to_float(k.params), x = to_float(k.x), y(k.x.size()), r = to_float(k.r);
  std::vector<float> dp(p.size(), 0.0f), dx(x.size(), 0.0f);
  MoeLayer moe(k.cfg);
  const MoeWeights w = bind(lay, p.data());
  moe.forward(y.data(), x.data(), w, k.N);
  moe.backward(dx.data(), bind(lay, dp.data()), r.data(), w);

  const double eps = 5e-4;
  auto check = [&](std::vector<double> params, std::vector<double> xs, bool wrt_x, size_t i, float got) {
    std::vector<double>& v = wrt_x ? xs : params;
    const double v0 = v[i];
    v[i] = v0 + eps;
    const double up = naive_moe(k.cfg, params, xs, k.r, k.N).objective;
    v[i] = v0 - eps;
    const double down = naive_moe(k.cfg, params, xs, k.r, k.N).objective;
    const double fd = (up - down) / (2 * eps);
    EXPECT_NEAR(got, fd, 2e-3 * (1 + std::fabs(fd))) << (wrt_x ? "input " : "param ") << i;
  };
  for (size_t i = 0; i < p.size(); ++i) check(k.params, k.x, false, i, dp[i]);
  for (size_t i = 0; i < x.size(); ++i) check(k.params, k.x, true, i, dx[i]);
}

TEST(MoeLayer, BackwardMatchesFiniteDifferencesWithDrops) { check_gradients(make_case(0.5f, 1.0, 21)); }

TEST(MoeLayer, BackwardMatchesFiniteDifferencesWithoutDrops) { check_gradients(make_case(4.0f, 1.0, 31)); }

TEST(MoeLayer, AuxAndZLossGradientsMatchFiniteDifferences) {
  // With a zero output gradient, the objective is the aux terms alone.
  check_gradients(make_case(1.0f, 0.0, 41));
}

TEST(MoeConfig, RejectsImpossibleShapes) {
  MoeConfig cfg{8, 8, 4, 5};
  EXPECT_THROW(cfg.validate(), UserError);
  cfg.top_k = 2;
  cfg.capacity_factor = 0;
  EXPECT_THROW(cfg.validate(), UserError);
}

// ---- The whole model with MoE layers.

LlamaConfig tiny_moe_config(int experts, int top_k) {
  LlamaConfig c = LlamaConfig::preset("tiny");
  c.vocab_size = 32;
  c.ffn_dim = 16;
  c.moe_experts = experts;
  c.moe_top_k = top_k;
  return c;
}

std::vector<int32_t> random_tokens(int n, int vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng.next_u64() % vocab);
  return t;
}

// One expert, top-1, no capacity limit and no aux terms: the combine weight is 1 and every MoE
// layer is the dense MLP, so loss and gradients must equal the dense model's (which
// models_llama_test checks against a naive double-precision model), the router's gradient zero.
TEST(MoeModel, OneExpertEqualsTheDenseModel) {
  LlamaConfig moe_cfg = tiny_moe_config(1, 1);
  moe_cfg.moe_capacity_factor = 2.0f;
  moe_cfg.moe_aux_coef = 0;
  moe_cfg.moe_z_coef = 0;
  moe_cfg.moe_every = 2;  // layer 1 is MoE, layer 0 dense
  LlamaConfig dense_cfg = moe_cfg;
  dense_cfg.moe_experts = 0;
  LlamaModel moe(moe_cfg), dense(dense_cfg);
  dense.init_weights(3);
  moe.init_weights(5);
  for (const ParamInfo& p : dense.params().entries()) {
    std::string name = p.name;
    const size_t mlp = name.find("layers.1.mlp.");
    if (mlp != std::string::npos) name.insert(mlp + 13, "experts.0.");
    std::copy_n(dense.param(p.name), p.numel(), moe.param(name));
  }
  const int B = 2, T = 8;
  std::vector<int32_t> tokens = random_tokens(B * T, moe_cfg.vocab_size, 1);
  std::vector<int32_t> targets = random_tokens(B * T, moe_cfg.vocab_size, 2);
  const float want = dense.forward(tokens.data(), targets.data(), B, T);
  EXPECT_NEAR(moe.forward(tokens.data(), targets.data(), B, T), want, 1e-6 * want);
  dense.backward();
  moe.backward();
  for (const ParamInfo& p : moe.params().entries()) {
    std::string name = p.name;
    const size_t expert = name.find("experts.0.");
    if (expert != std::string::npos) name.erase(expert, 10);
    const float* g = moe.grad(p.name);
    if (name == "model.layers.1.mlp.gate.weight") {
      for (size_t i = 0; i < p.numel(); ++i) EXPECT_NEAR(g[i], 0.0f, 1e-7) << p.name;
      continue;
    }
    const float* ref = dense.grad(name);
    for (size_t i = 0; i < p.numel(); ++i) EXPECT_NEAR(g[i], ref[i], 1e-6 + 1e-5 * std::fabs(ref[i])) << p.name << " " << i;
  }
}

// Four experts, top-2, capacity drops and large aux coefficients: the gradient of the objective
// (LM loss + aux terms) against central differences of the float model, for every tensor along its
// gradient's direction (so the difference is large next to float rounding), and for each tensor's
// largest gradient element alone. Weights are scaled up so gradients are far from the rounding.
TEST(MoeModel, GradientsOfLossAndAuxMatchFiniteDifferences) {
  LlamaConfig cfg = tiny_moe_config(4, 2);
  cfg.moe_capacity_factor = 0.75f;
  cfg.moe_aux_coef = 0.5f;
  cfg.moe_z_coef = 0.1f;
  LlamaModel model(cfg);
  model.init_weights(10);
  float* params = model.param_buffer().data<float>();
  for (size_t i = 0; i < model.params().total(); ++i) params[i] *= 3;
  const int B = 1, T = 8;
  std::vector<int32_t> tokens = random_tokens(B * T, cfg.vocab_size, 3);
  std::vector<int32_t> targets = random_tokens(B * T, cfg.vocab_size, 4);
  auto objective = [&] { return model.forward(tokens.data(), targets.data(), B, T) + model.moe_aux_objective(); };
  objective();
  EXPECT_GT(model.moe_dropped(), 0) << "the case must exercise capacity drops";
  model.zero_grad();
  model.backward();
  const std::vector<float> grads(model.grad_buffer().data<float>(),
                                 model.grad_buffer().data<float>() + model.params().total());

  // Small enough that no top-k choice or capacity drop changes (2e-3 already flips one here), large
  // enough that the float loss's rounding (~5e-7) stays under 1e-3 of the difference.
  const double eps = 5e-4;
  for (const ParamInfo& p : model.params().entries()) {
    float* x = params + p.offset;
    const float* g = grads.data() + p.offset;
    double norm = 0;
    size_t largest = 0;
    for (size_t i = 0; i < p.numel(); ++i) {
      norm += static_cast<double>(g[i]) * g[i];
      if (std::fabs(g[i]) > std::fabs(g[largest])) largest = i;
    }
    norm = std::sqrt(norm);
    if (norm == 0) norm = 1;  // an expert no token reached: the differences must be zero too
    const std::vector<float> x0(x, x + p.numel());
    auto shifted = [&](double t) {
      for (size_t i = 0; i < p.numel(); ++i) x[i] = static_cast<float>(x0[i] + t * g[i] / norm);
      const double v = objective();
      std::copy(x0.begin(), x0.end(), x);
      return v;
    };
    const double along = (shifted(eps) - shifted(-eps)) / (2 * eps);
    EXPECT_NEAR(along, g[largest] == 0 ? 0 : norm, 2e-3 + 2e-2 * norm) << p.name << " along its gradient";
    x[largest] = x0[largest] + static_cast<float>(eps);
    const double up = objective();
    x[largest] = x0[largest] - static_cast<float>(eps);
    const double down = objective();
    x[largest] = x0[largest];
    const double fd = (up - down) / (2 * eps);
    EXPECT_NEAR(fd, g[largest], 2e-3 + 2e-2 * std::fabs(g[largest])) << p.name << " element " << largest;
  }
}

TEST(MoeModel, NamesFollowMixtralLayout) {
  LlamaConfig cfg = tiny_moe_config(4, 2);
  cfg.moe_every = 2;
  LlamaModel model(cfg);
  EXPECT_NE(model.params().find("model.layers.0.mlp.gate_proj.weight"), nullptr);
  EXPECT_EQ(model.params().find("model.layers.1.mlp.gate_proj.weight"), nullptr);
  EXPECT_EQ(model.params().at("model.layers.1.mlp.gate.weight").shape, (Shape{4, cfg.d_model}));
  EXPECT_EQ(model.params().at("model.layers.1.mlp.experts.3.down_proj.weight").shape, (Shape{cfg.d_model, 16}));
  EXPECT_EQ(static_cast<long long>(model.params().total()), cfg.num_params());
}

}  // namespace
}  // namespace rw
