// The whole model against an independent implementation written here: a naive double-precision
// forward pass (no blocking, no kernels from core/) whose loss must match, and whose central
// finite differences must match every gradient the model's explicit backward produces.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/random.h"
#include "models/llama.h"

namespace rw {
namespace {

using Mat = std::vector<double>;  // row-major

struct Batch {
  int B, T;
  std::vector<int32_t> tokens, targets;
};

Batch random_batch(const LlamaConfig& cfg, int B, int T, uint64_t seed, bool some_ignored) {
  Batch b{B, T, std::vector<int32_t>(B * T), std::vector<int32_t>(B * T)};
  Rng rng(seed);
  for (int i = 0; i < B * T; ++i) {
    b.tokens[i] = static_cast<int32_t>(rng.next_u64() % cfg.vocab_size);
    b.targets[i] = static_cast<int32_t>(rng.next_u64() % cfg.vocab_size);
    if (some_ignored && i % 7 == 3) b.targets[i] = -1;
  }
  return b;
}

// out[n, o] = sum_i x[n, i] * w[o, i]   (Hugging Face [out, in] weights)
Mat matmul_t(const Mat& x, const double* w, int N, int I, int O) {
  Mat out(static_cast<size_t>(N) * O, 0.0);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o) {
      double s = 0;
      for (int i = 0; i < I; ++i) s += x[n * I + i] * w[o * I + i];
      out[n * O + o] = s;
    }
  return out;
}

Mat rmsnorm(const Mat& x, const double* w, int N, int C, double eps) {
  Mat out(x.size());
  for (int n = 0; n < N; ++n) {
    double ms = 0;
    for (int c = 0; c < C; ++c) ms += x[n * C + c] * x[n * C + c];
    double r = 1.0 / std::sqrt(ms / C + eps);
    for (int c = 0; c < C; ++c) out[n * C + c] = x[n * C + c] * r * w[c];
  }
  return out;
}

// Rotate-half RoPE at position t = n % T, written from the Hugging Face formula.
void rope(Mat& x, int N, int T, int nh, int D, double theta) {
  for (int n = 0; n < N; ++n)
    for (int h = 0; h < nh; ++h) {
      double* v = &x[(static_cast<size_t>(n) * nh + h) * D];
      for (int i = 0; i < D / 2; ++i) {
        double angle = (n % T) * std::pow(theta, -2.0 * i / D);
        double a = v[i], b = v[i + D / 2];
        v[i] = a * std::cos(angle) - b * std::sin(angle);
        v[i + D / 2] = b * std::cos(angle) + a * std::sin(angle);
      }
    }
}

// Mean cross-entropy of the naive model over targets >= 0, parameters taken from p (laid out as
// the model's ParamTable says).
double naive_loss(const LlamaConfig& cfg, const ParamTable& table, const std::vector<double>& p, const Batch& batch) {
  const int B = batch.B, T = batch.T, N = B * T, C = cfg.d_model, F = cfg.ffn_dim, V = cfg.vocab_size;
  const int H = cfg.n_heads, KH = cfg.n_kv_heads, D = cfg.head_dim();
  auto P = [&](const std::string& name) { return p.data() + table.at(name).offset; };
  auto L = [&](int l, const char* rest) { return P("model.layers." + std::to_string(l) + "." + rest); };

  Mat x(static_cast<size_t>(N) * C);
  const double* emb = P("model.embed_tokens.weight");
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c) x[n * C + c] = emb[batch.tokens[n] * C + c];

  for (int l = 0; l < cfg.n_layers; ++l) {
    Mat h = rmsnorm(x, L(l, "input_layernorm.weight"), N, C, cfg.norm_eps);
    Mat q = matmul_t(h, L(l, "self_attn.q_proj.weight"), N, C, H * D);
    Mat k = matmul_t(h, L(l, "self_attn.k_proj.weight"), N, C, KH * D);
    Mat v = matmul_t(h, L(l, "self_attn.v_proj.weight"), N, C, KH * D);
    rope(q, N, T, H, D, cfg.rope_theta);
    rope(k, N, T, KH, D, cfg.rope_theta);
    Mat att(static_cast<size_t>(N) * H * D, 0.0);
    for (int b = 0; b < B; ++b)
      for (int hh = 0; hh < H; ++hh) {
        const int kh = hh / (H / KH);
        for (int i = 0; i < T; ++i) {
          const double* qi = &q[((b * T + i) * H + hh) * D];
          std::vector<double> s(i + 1);
          double mx = -INFINITY, sum = 0;
          for (int j = 0; j <= i; ++j) {
            const double* kj = &k[((b * T + j) * KH + kh) * D];
            double dot = 0;
            for (int d = 0; d < D; ++d) dot += qi[d] * kj[d];
            s[j] = dot / std::sqrt(static_cast<double>(D));
            mx = std::max(mx, s[j]);
          }
          for (int j = 0; j <= i; ++j) sum += std::exp(s[j] - mx);
          double* out = &att[((b * T + i) * H + hh) * D];
          for (int j = 0; j <= i; ++j) {
            const double* vj = &v[((b * T + j) * KH + kh) * D];
            for (int d = 0; d < D; ++d) out[d] += std::exp(s[j] - mx) / sum * vj[d];
          }
        }
      }
    Mat o = matmul_t(att, L(l, "self_attn.o_proj.weight"), N, H * D, C);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];

    Mat h2 = rmsnorm(x, L(l, "post_attention_layernorm.weight"), N, C, cfg.norm_eps);
    Mat g = matmul_t(h2, L(l, "mlp.gate_proj.weight"), N, C, F);
    Mat u = matmul_t(h2, L(l, "mlp.up_proj.weight"), N, C, F);
    for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
    Mat down = matmul_t(g, L(l, "mlp.down_proj.weight"), N, F, C);
    for (size_t i = 0; i < x.size(); ++i) x[i] += down[i];
  }
  Mat xf = rmsnorm(x, P("model.norm.weight"), N, C, cfg.norm_eps);
  const double* head = cfg.tied_embeddings ? emb : P("lm_head.weight");
  Mat logits = matmul_t(xf, head, N, C, V);
  double total = 0;
  int count = 0;
  for (int n = 0; n < N; ++n) {
    if (batch.targets[n] < 0) continue;
    double mx = -INFINITY, sum = 0;
    for (int j = 0; j < V; ++j) mx = std::max(mx, logits[n * V + j]);
    for (int j = 0; j < V; ++j) sum += std::exp(logits[n * V + j] - mx);
    total += mx + std::log(sum) - logits[n * V + batch.targets[n]];
    ++count;
  }
  return total / count;
}

LlamaConfig test_config(bool tied) {
  LlamaConfig c;
  c.vocab_size = 11;
  c.d_model = 8;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;  // GQA
  c.ffn_dim = 12;
  c.max_seq = 16;
  c.rope_theta = 500.0f;  // large angles at short positions, so a RoPE mistake shows
  c.tied_embeddings = tied;
  return c;
}

// Weights larger than the 0.02 default, so every path (attention, gates) is far from linear.
void init_large(LlamaModel& model, uint64_t seed) {
  Rng rng(seed);
  float* p = model.param_buffer().data<float>();
  for (size_t i = 0; i < model.params().total(); ++i) p[i] = 0.4f * rng.normal();
  for (const ParamInfo& info : model.params().entries())
    if (info.shape.size() == 1)
      for (size_t j = 0; j < info.numel(); ++j) p[info.offset + j] = 1.0f + 0.3f * rng.normal();
}

struct ModelCase {
  bool tied;
  int block_q, block_k;
  bool some_ignored;
};

class LlamaVsNaive : public ::testing::TestWithParam<ModelCase> {};

TEST_P(LlamaVsNaive, LossAndEveryGradientMatch) {
  const ModelCase mc = GetParam();
  const LlamaConfig cfg = test_config(mc.tied);
  LlamaModel model(cfg, mc.block_q, mc.block_k);
  init_large(model, 7);
  const Batch batch = random_batch(cfg, 2, 7, 11, mc.some_ignored);

  model.zero_grad();
  const float loss = model.forward(batch.tokens.data(), batch.targets.data(), batch.B, batch.T);
  model.backward();

  const size_t n = model.params().total();
  std::vector<double> p(model.param_buffer().data<float>(), model.param_buffer().data<float>() + n);
  const double ref = naive_loss(cfg, model.params(), p, batch);
  // fp32 kernels against double: a few ulps of the O(1) loss.
  EXPECT_NEAR(loss, ref, 2e-5 * std::abs(ref));

  // Central differences on the double model have error ~eps^2 * f''' ~ 1e-10, far below the fp32
  // gradient's own rounding, so the bound below is set by fp32: 1e-4 relative to the largest
  // gradient entry plus 1e-3 relative per entry.
  const float* grad = model.grad_buffer().data<float>();
  double gmax = 0;
  for (size_t i = 0; i < n; ++i) gmax = std::max(gmax, std::abs(static_cast<double>(grad[i])));
  ASSERT_GT(gmax, 1e-3);
  const double eps = 1e-5;
  for (const ParamInfo& info : model.params().entries()) {
    for (size_t j = 0; j < info.numel(); ++j) {
      const size_t i = info.offset + j;
      const double saved = p[i];
      p[i] = saved + eps;
      const double up = naive_loss(cfg, model.params(), p, batch);
      p[i] = saved - eps;
      const double down = naive_loss(cfg, model.params(), p, batch);
      p[i] = saved;
      const double fd = (up - down) / (2 * eps);
      ASSERT_NEAR(grad[i], fd, 1e-4 * gmax + 1e-3 * std::abs(fd)) << info.name << "[" << j << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LlamaVsNaive,
                         ::testing::Values(ModelCase{false, 64, 64, false}, ModelCase{false, 2, 3, true},
                                           ModelCase{true, 3, 2, false}, ModelCase{true, 1, 1, true}));

// Finite differences on the fp32 model itself: the directional derivative along a random
// direction, with a step large enough (1e-2 of unit-norm) to rise above float rounding.
TEST(LlamaModel, DirectionalDerivativeMatchesBackward) {
  LlamaConfig cfg = LlamaConfig::preset("tiny");
  LlamaModel model(cfg, 16, 16);
  model.init_weights(3);
  const Batch batch = random_batch(cfg, 2, 24, 5, false);
  model.zero_grad();
  model.forward(batch.tokens.data(), batch.targets.data(), batch.B, batch.T);
  model.backward();

  const size_t n = model.params().total();
  float* p = model.param_buffer().data<float>();
  const float* g = model.grad_buffer().data<float>();
  std::vector<float> saved(p, p + n), dir(n);
  Rng rng(9);
  double norm = 0, analytic = 0;
  for (size_t i = 0; i < n; ++i) norm += static_cast<double>(dir[i] = rng.normal()) * dir[i];
  for (size_t i = 0; i < n; ++i) analytic += g[i] * (dir[i] /= std::sqrt(norm));
  const float h = 1e-2f;
  auto loss_at = [&](float t) {
    for (size_t i = 0; i < n; ++i) p[i] = saved[i] + t * dir[i];
    return static_cast<double>(model.forward(batch.tokens.data(), batch.targets.data(), batch.B, batch.T));
  };
  const double fd = (loss_at(h) - loss_at(-h)) / (2 * h);
  EXPECT_NEAR(analytic, fd, 2e-2 * std::abs(fd) + 1e-4);
}

TEST(LlamaModel, BackwardAccumulatesAndScales) {
  LlamaConfig cfg = LlamaConfig::preset("tiny");
  LlamaModel model(cfg);
  model.init_weights(1);
  const Batch batch = random_batch(cfg, 2, 16, 2, false);
  const size_t n = model.params().total();
  model.zero_grad();
  model.forward(batch.tokens.data(), batch.targets.data(), batch.B, batch.T);
  model.backward();
  std::vector<float> once(model.grad_buffer().data<float>(), model.grad_buffer().data<float>() + n);
  model.backward(0.5f);  // the same batch again at half weight: 1.5x in total
  const float* g = model.grad_buffer().data<float>();
  for (size_t i = 0; i < n; ++i) ASSERT_NEAR(g[i], 1.5f * once[i], 1e-6f + 1e-5f * std::abs(once[i])) << i;
}

TEST(LlamaModel, HuggingFaceParameterNamesAndShapes) {
  LlamaConfig cfg = LlamaConfig::preset("tiny");
  LlamaModel model(cfg);
  const ParamTable& t = model.params();
  EXPECT_EQ(t.total(), static_cast<size_t>(cfg.num_params()));
  const int64_t C = cfg.d_model, D = cfg.head_dim();
  EXPECT_EQ(t.at("model.embed_tokens.weight").shape, (Shape{cfg.vocab_size, C}));
  EXPECT_EQ(t.at("model.layers.1.self_attn.q_proj.weight").shape, (Shape{cfg.n_heads * D, C}));
  EXPECT_EQ(t.at("model.layers.1.self_attn.k_proj.weight").shape, (Shape{cfg.n_kv_heads * D, C}));
  EXPECT_EQ(t.at("model.layers.0.self_attn.o_proj.weight").shape, (Shape{C, cfg.n_heads * D}));
  EXPECT_EQ(t.at("model.layers.0.mlp.down_proj.weight").shape, (Shape{C, cfg.ffn_dim}));
  EXPECT_EQ(t.at("model.layers.0.post_attention_layernorm.weight").shape, (Shape{C}));
  EXPECT_EQ(t.at("lm_head.weight").shape, (Shape{cfg.vocab_size, C}));
  EXPECT_FALSE(t.at("model.norm.weight").decay);
  EXPECT_TRUE(t.at("model.layers.0.mlp.up_proj.weight").decay);
  EXPECT_EQ(t.entries().size(), 3u + 9u * cfg.n_layers);
  std::set<std::string> names;
  for (const ParamInfo& p : t.entries()) names.insert(p.name);
  EXPECT_EQ(names.size(), t.entries().size());

  cfg.tied_embeddings = true;
  LlamaModel tied(cfg);
  EXPECT_EQ(tied.params().find("lm_head.weight"), nullptr);
  EXPECT_EQ(tied.params().total(), static_cast<size_t>(cfg.num_params()));
}

TEST(LlamaModel, RejectsTokensOutsideVocab) {
  LlamaModel model(LlamaConfig::preset("tiny"));
  std::vector<int32_t> tokens = {1, 2, 300, 4}, targets = {2, 3, 4, 5};
  EXPECT_THROW(model.forward(tokens.data(), targets.data(), 1, 4), UserError);
}

}  // namespace
}  // namespace rw
