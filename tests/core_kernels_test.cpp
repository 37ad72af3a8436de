// Every CPU kernel in core/ops.h (attention has its own test) against a plain double-precision
// reference written here: the forward against the reference's values, the backward against central
// differences of the reference's scalar L = sum(out * w) for a random fixed w. Backward buffers
// start non-zero, so a kernel that assigns instead of accumulating fails.
//
// Tolerances: the kernels compute in float over sums of at most a few hundred terms, so their
// relative error stays near 1e-6; the checks allow 1e-5 (forward) and 1e-4 (gradients), while a
// wrong formula is off by O(1).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/ops.h"
#include "core/random.h"

namespace rw::cpu {
namespace {

using Vec = std::vector<double>;
using Floats = std::vector<float>;

Floats randn(size_t n, uint64_t seed, float scale = 1.0f, float shift = 0.0f) {
  Rng rng(seed);
  Floats x(n);
  for (float& v : x) v = shift + scale * rng.normal();
  return x;
}

Vec to_d(const Floats& x) { return Vec(x.begin(), x.end()); }

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

Vec plus(const Floats& a, const Vec& b) {
  Vec r(a.size());
  for (size_t i = 0; i < a.size(); ++i) r[i] = a[i] + b[i];
  return r;
}

// Gradient of L(x) = sum(f(x) * w) by central differences on a double reference. With h = 1e-6
// the truncation error (~h^2) and the rounding error (~1e-16 / h) both stay below 1e-9, far under
// the float tolerance the kernels are held to.
template <typename F>
Vec fd_grad(F f, Vec x, const Vec& w) {
  const double h = 1e-6;
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double xi = x[i];
    x[i] = xi + h;
    double lp = dot(f(x), w);
    x[i] = xi - h;
    double lm = dot(f(x), w);
    x[i] = xi;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

void expect_close(const Floats& got, const Vec& want, double rtol, double atol, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::fabs(got[i] - want[i]) <= atol + rtol * std::fabs(want[i])) continue;
    if (bad++ < 5) ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i];
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << got.size() << " elements out of tolerance";
}

// Runs `f` with one and with two OpenMP threads; both results must have the same bits.
template <typename F>
void expect_same_bits_for_1_and_2_threads(F f) {
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  auto one = f();
  omp_set_num_threads(2);
  auto two = f();
  omp_set_num_threads(saved);
  ASSERT_EQ(one.size(), two.size());
  EXPECT_EQ(std::memcmp(one.data(), two.data(), one.size() * sizeof(one[0])), 0);
}

// ---- embedding

Vec ref_embedding(const std::vector<int32_t>& tok, const Vec& wte, int C) {
  Vec out;
  for (int32_t t : tok) out.insert(out.end(), wte.begin() + size_t(t) * C, wte.begin() + size_t(t + 1) * C);
  return out;
}

TEST(Embedding, ForwardAndBackward) {
  const int V = 11, C = 70, N = 9;  // C spans two of the backward's 64-column slices
  const std::vector<int32_t> tok = {3, 0, 10, 3, 7, 3, 0, 5, 10};  // repeats must add up
  Floats wte = randn(size_t(V) * C, 1), dout = randn(size_t(N) * C, 2), out(size_t(N) * C);
  embedding_forward(out.data(), tok.data(), wte.data(), N, C);
  expect_close(out, ref_embedding(tok, to_d(wte), C), 0, 0, "out");

  Floats dwte = randn(wte.size(), 3), dwte0 = dwte;
  embedding_backward(dwte.data(), dout.data(), tok.data(), N, C);
  Vec g = fd_grad([&](const Vec& w) { return ref_embedding(tok, w, C); }, to_d(wte), to_d(dout));
  expect_close(dwte, plus(dwte0, g), 1e-4, 1e-4, "dwte");
}

TEST(Embedding, BackwardSameBitsForAnyThreadCount) {
  const int V = 5, C = 200, N = 300;
  std::vector<int32_t> tok(N);
  for (int n = 0; n < N; ++n) tok[n] = (n * 7) % V;
  Floats dout = randn(size_t(N) * C, 4);
  expect_same_bits_for_1_and_2_threads([&] {
    Floats dwte(size_t(V) * C, 0.5f);
    embedding_backward(dwte.data(), dout.data(), tok.data(), N, C);
    return dwte;
  });
}

// ---- RMSNorm

Vec ref_rmsnorm(const Vec& x, const Vec& w, int N, int C, double eps) {
  Vec out(x.size());
  for (int n = 0; n < N; ++n) {
    double ss = 0;
    for (int c = 0; c < C; ++c) ss += x[n * C + c] * x[n * C + c];
    double r = 1 / std::sqrt(ss / C + eps);
    for (int c = 0; c < C; ++c) out[n * C + c] = x[n * C + c] * r * w[c];
  }
  return out;
}

TEST(RmsNorm, ForwardAndBackward) {
  const int N = 6, C = 70;
  const float eps = 1e-5f;
  Floats x = randn(N * C, 5), w = randn(C, 6, 0.3f, 1.0f), dout = randn(N * C, 7);
  Floats out(N * C), rstd(N);
  rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, eps);
  expect_close(out, ref_rmsnorm(to_d(x), to_d(w), N, C, eps), 1e-5, 1e-6, "out");

  Floats dx = randn(N * C, 8), dw = randn(C, 9), dx0 = dx, dw0 = dw;
  rmsnorm_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), rstd.data(), N, C);
  Vec xd = to_d(x), wd = to_d(w);
  Vec gx = fd_grad([&](const Vec& v) { return ref_rmsnorm(v, wd, N, C, eps); }, xd, to_d(dout));
  Vec gw = fd_grad([&](const Vec& v) { return ref_rmsnorm(xd, v, N, C, eps); }, wd, to_d(dout));
  expect_close(dx, plus(dx0, gx), 1e-4, 1e-4, "dinp");
  expect_close(dw, plus(dw0, gw), 1e-4, 1e-4, "dweight");
}

TEST(RmsNorm, BackwardSameBitsForAnyThreadCount) {
  const int N = 257, C = 130;
  Floats x = randn(N * C, 10), w = randn(C, 11), dout = randn(N * C, 12), out(N * C), rstd(N);
  rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), N, C, 1e-5f);
  expect_same_bits_for_1_and_2_threads([&] {
    Floats dx(N * C, 0.0f), dw(C, 0.0f);
    rmsnorm_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), rstd.data(), N, C);
    dx.insert(dx.end(), dw.begin(), dw.end());
    return dx;
  });
}

// ---- linear

Vec ref_linear(const Vec& x, const Vec& w, int N, int IC, int OC) {
  Vec out(size_t(N) * OC, 0.0);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < OC; ++o)
      for (int i = 0; i < IC; ++i) out[n * OC + o] += x[n * IC + i] * w[o * IC + i];
  return out;
}

TEST(Linear, ForwardAndBackwardOddSizes) {
  const int N = 7, IC = 13, OC = 5;
  Floats x = randn(N * IC, 13), w = randn(OC * IC, 14), dout = randn(N * OC, 15), out(N * OC);
  linear_forward(out.data(), x.data(), w.data(), N, IC, OC);
  expect_close(out, ref_linear(to_d(x), to_d(w), N, IC, OC), 1e-5, 1e-5, "out");

  Floats dx = randn(N * IC, 16), dw = randn(OC * IC, 17), dx0 = dx, dw0 = dw;
  linear_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), N, IC, OC);
  Vec xd = to_d(x), wd = to_d(w);
  Vec gx = fd_grad([&](const Vec& v) { return ref_linear(v, wd, N, IC, OC); }, xd, to_d(dout));
  Vec gw = fd_grad([&](const Vec& v) { return ref_linear(xd, v, N, IC, OC); }, wd, to_d(dout));
  expect_close(dx, plus(dx0, gx), 1e-4, 1e-4, "dinp");
  expect_close(dw, plus(dw0, gw), 1e-4, 1e-4, "dweight");

  // The first layer has no input gradient: dinp = null still accumulates dweight.
  Floats dw2 = dw0;
  linear_backward(nullptr, dw2.data(), dout.data(), x.data(), w.data(), N, IC, OC);
  expect_close(dw2, plus(dw0, gw), 1e-4, 1e-4, "dweight (dinp null)");
}

// Large enough that every thread gets its own slice of rows (and a ragged last slice): the split
// over threads must neither change the values nor the bits.
TEST(Linear, SplitOverThreadsMatchesReferenceAndBits) {
  const int N = 83, IC = 40, OC = 71;
  Floats x = randn(N * IC, 18), w = randn(OC * IC, 19), dout = randn(N * OC, 20);
  expect_same_bits_for_1_and_2_threads([&] {
    Floats out(N * OC), dx(N * IC, 0.25f), dw(OC * IC, -0.5f);
    linear_forward(out.data(), x.data(), w.data(), N, IC, OC);
    linear_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), N, IC, OC);
    expect_close(out, ref_linear(to_d(x), to_d(w), N, IC, OC), 1e-5, 1e-5, "out");
    Vec dx_ref(N * IC), dw_ref(OC * IC);
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < OC; ++o)
        for (int i = 0; i < IC; ++i) {
          dx_ref[n * IC + i] += double(dout[n * OC + o]) * w[o * IC + i];
          dw_ref[o * IC + i] += double(dout[n * OC + o]) * x[n * IC + i];
        }
    for (double& v : dx_ref) v += 0.25;
    for (double& v : dw_ref) v -= 0.5;
    expect_close(dx, dx_ref, 1e-4, 1e-4, "dinp");
    expect_close(dw, dw_ref, 1e-4, 1e-4, "dweight");
    out.insert(out.end(), dx.begin(), dx.end());
    out.insert(out.end(), dw.begin(), dw.end());
    return out;
  });
}

// ---- RoPE

// cos and sin of pos * theta^(-2i/D), straight from the Hugging Face definition.
double hf_angle(int pos, int i, int D, double theta) { return pos * std::pow(theta, -2.0 * i / D); }

Vec ref_rope(const Vec& x, const std::vector<int32_t>& pos, int N, int nh, int D, double theta) {
  Vec out(x.size());
  const int half = D / 2;
  for (int n = 0; n < N; ++n)
    for (int h = 0; h < nh; ++h)
      for (int i = 0; i < half; ++i) {
        size_t a = (size_t(n) * nh + h) * D + i, b = a + half;
        double c = std::cos(hf_angle(pos[n], i, D, theta)), s = std::sin(hf_angle(pos[n], i, D, theta));
        out[a] = x[a] * c - x[b] * s;
        out[b] = x[b] * c + x[a] * s;
      }
  return out;
}

struct RopeCase {
  static constexpr int N = 6, nh = 3, D = 16, max_pos = 128;
  // Global positions, out of order as context parallelism hands them in.
  std::vector<int32_t> pos = {0, 5, 3, 100, 17, 127};
  Floats cos = Floats(max_pos * D / 2), sin = Floats(max_pos * D / 2);
  explicit RopeCase(float theta) { rope_table(cos.data(), sin.data(), max_pos, D, theta); }
  Floats forward(const Floats& x) const {
    Floats out(x.size());
    rope_forward(out.data(), x.data(), cos.data(), sin.data(), pos.data(), N, nh, D);
    return out;
  }
};

TEST(Rope, TableMatchesFormulaAndThetaMatters) {
  RopeCase a(10000.0f), b(500000.0f);
  Vec want_cos, want_sin;
  for (int p = 0; p < RopeCase::max_pos; ++p)
    for (int i = 0; i < RopeCase::D / 2; ++i) {
      want_cos.push_back(std::cos(hf_angle(p, i, RopeCase::D, 10000.0)));
      want_sin.push_back(std::sin(hf_angle(p, i, RopeCase::D, 10000.0)));
    }
  expect_close(a.cos, want_cos, 0, 1e-7, "cos");
  expect_close(a.sin, want_sin, 0, 1e-7, "sin");
  EXPECT_NE(a.cos, b.cos);
  Floats x = randn(RopeCase::N * RopeCase::nh * RopeCase::D, 18);
  EXPECT_NE(a.forward(x), b.forward(x));
}

TEST(Rope, ForwardMatchesHuggingFaceAndRunsInPlace) {
  RopeCase rc(10000.0f);
  Floats x = randn(RopeCase::N * RopeCase::nh * RopeCase::D, 19);
  Floats out = rc.forward(x);
  expect_close(out, ref_rope(to_d(x), rc.pos, RopeCase::N, RopeCase::nh, RopeCase::D, 10000.0), 1e-5, 1e-6, "out");
  Floats y = x;
  rope_forward(y.data(), y.data(), rc.cos.data(), rc.sin.data(), rc.pos.data(), RopeCase::N, RopeCase::nh,
               RopeCase::D);
  EXPECT_EQ(y, out);
}

TEST(Rope, BackwardMatchesFiniteDifferences) {
  RopeCase rc(10000.0f);
  const int n = RopeCase::N * RopeCase::nh * RopeCase::D;
  Floats x = randn(n, 20), dout = randn(n, 21), dx = randn(n, 22), dx0 = dx;
  rope_backward(dx.data(), dout.data(), rc.cos.data(), rc.sin.data(), rc.pos.data(), RopeCase::N, RopeCase::nh,
                RopeCase::D);
  Vec g = fd_grad([&](const Vec& v) { return ref_rope(v, rc.pos, RopeCase::N, RopeCase::nh, RopeCase::D, 1e4); },
                  to_d(x), to_d(dout));
  expect_close(dx, plus(dx0, g), 1e-4, 1e-4, "dinp");
}

// A rotation is orthogonal: it keeps each head's norm, and its backward (R^T) undoes it.
TEST(Rope, RotationIsOrthogonal) {
  RopeCase rc(10000.0f);
  const int n = RopeCase::N * RopeCase::nh * RopeCase::D;
  Floats x = randn(n, 23), y = rc.forward(x), back(n, 0.0f);
  rope_backward(back.data(), y.data(), rc.cos.data(), rc.sin.data(), rc.pos.data(), RopeCase::N, RopeCase::nh,
                RopeCase::D);
  expect_close(back, to_d(x), 1e-5, 1e-6, "R^T R x");
  for (int row = 0; row < RopeCase::N * RopeCase::nh; ++row) {
    double nx = 0, ny = 0;
    for (int i = 0; i < RopeCase::D; ++i) {
      nx += double(x[row * RopeCase::D + i]) * x[row * RopeCase::D + i];
      ny += double(y[row * RopeCase::D + i]) * y[row * RopeCase::D + i];
    }
    EXPECT_NEAR(ny, nx, 1e-5 * nx) << "row " << row;
  }
}

// ---- SwiGLU and residual add

Vec ref_swiglu(const Vec& g, const Vec& u) {
  Vec out(g.size());
  for (size_t i = 0; i < g.size(); ++i) out[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
  return out;
}

TEST(SwiGLU, ForwardAndBackward) {
  const size_t n = 1001;
  Floats g = randn(n, 24, 4.0f), u = randn(n, 25), dout = randn(n, 26), out(n);
  g[0] = 90.0f;  // exp(-g) underflows and exp(g) would overflow: silu must stay finite
  g[1] = -90.0f;
  swiglu_forward(out.data(), g.data(), u.data(), n);
  Vec gd = to_d(g), ud = to_d(u);
  expect_close(out, ref_swiglu(gd, ud), 1e-5, 1e-6, "out");

  Floats dg = randn(n, 27), du = randn(n, 28), dg0 = dg, du0 = du;
  swiglu_backward(dg.data(), du.data(), dout.data(), g.data(), u.data(), n);
  Vec gg = fd_grad([&](const Vec& v) { return ref_swiglu(v, ud); }, gd, to_d(dout));
  Vec gu = fd_grad([&](const Vec& v) { return ref_swiglu(gd, v); }, ud, to_d(dout));
  expect_close(dg, plus(dg0, gg), 1e-4, 1e-4, "dgate");
  expect_close(du, plus(du0, gu), 1e-4, 1e-4, "dup");
}

TEST(Add, ForwardAndInPlace) {
  const size_t n = 1003;
  Floats a = randn(n, 29), b = randn(n, 30), out(n);
  add_forward(out.data(), a.data(), b.data(), n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], a[i] + b[i]) << i;
  add_forward(a.data(), a.data(), b.data(), n);
  EXPECT_EQ(a, out);
}

// ---- sum of squares

TEST(SumSquares, MatchesDoubleAndSameBitsForAnyThreadCount) {
  const size_t n = 25 * 4096 + 123;  // many chunks and a partial one
  Floats x = randn(n, 31);
  double want = 0;
  for (float v : x) want += double(v) * v;
  EXPECT_NEAR(sum_squares(x.data(), n), want, 1e-12 * want);
  EXPECT_EQ(sum_squares(x.data(), 0), 0.0);
  expect_same_bits_for_1_and_2_threads([&] { return std::vector<double>{sum_squares(x.data(), n)}; });
}

// ---- cross-entropy

struct RefCE {
  Vec loss, lse;
};

RefCE ref_cross_entropy(const Vec& x, const std::vector<int32_t>& tgt, int N, int V) {
  RefCE r{Vec(N), Vec(N)};
  for (int n = 0; n < N; ++n) {
    double mx = x[n * V];
    for (int i = 1; i < V; ++i) mx = std::max(mx, x[n * V + i]);
    double s = 0;
    for (int i = 0; i < V; ++i) s += std::exp(x[n * V + i] - mx);
    r.lse[n] = mx + std::log(s);
    r.loss[n] = tgt[n] < 0 ? 0 : r.lse[n] - x[n * V + tgt[n]];
  }
  return r;
}

TEST(CrossEntropy, ForwardAndBackwardWithIgnoredTargets) {
  const int N = 5, V = 37;
  const std::vector<int32_t> tgt = {3, -1, 36, 0, -100};
  const float dloss = 1.0f / 3;  // mean over the three counted targets
  Floats x = randn(N * V, 32, 3.0f), loss(N), lse(N);
  cross_entropy_forward(loss.data(), lse.data(), x.data(), tgt.data(), N, V);
  RefCE want = ref_cross_entropy(to_d(x), tgt, N, V);
  expect_close(loss, want.loss, 1e-5, 1e-6, "loss");
  expect_close(lse, want.lse, 1e-5, 1e-6, "lse (ignored rows too)");
  EXPECT_EQ(loss[1], 0.0f);
  EXPECT_EQ(loss[4], 0.0f);

  Floats dx = randn(N * V, 33), dx0 = dx;
  cross_entropy_backward(dx.data(), x.data(), lse.data(), tgt.data(), dloss, N, V);
  Vec g = fd_grad([&](const Vec& v) { return ref_cross_entropy(v, tgt, N, V).loss; }, to_d(x), Vec(N, dloss));
  expect_close(dx, plus(dx0, g), 1e-4, 1e-5, "dlogits");
  for (int i = 0; i < V; ++i) {  // ignored rows are left exactly as they were
    EXPECT_EQ(dx[1 * V + i], dx0[1 * V + i]);
    EXPECT_EQ(dx[4 * V + i], dx0[4 * V + i]);
  }
}

// Logits near 1e4 overflow exp() unless the row max is subtracted first.
TEST(CrossEntropy, StableForHugeLogits) {
  const int N = 3, V = 50;
  const std::vector<int32_t> tgt = {7, 0, 49};
  Floats x = randn(N * V, 34, 5.0f, 1e4f), loss(N), lse(N), dx(N * V, 0.0f);
  x[1 * V + 3] = -1e4f;
  cross_entropy_forward(loss.data(), lse.data(), x.data(), tgt.data(), N, V);
  RefCE want = ref_cross_entropy(to_d(x), tgt, N, V);
  expect_close(loss, want.loss, 1e-4, 1e-3, "loss");  // lse ~1e4 in float: absolute error ~1e-3
  cross_entropy_backward(dx.data(), x.data(), lse.data(), tgt.data(), 1.0f, N, V);
  for (int n = 0; n < N; ++n) {
    double row = 0;  // softmax - onehot sums to zero
    for (int i = 0; i < V; ++i) {
      ASSERT_TRUE(std::isfinite(dx[n * V + i]));
      row += dx[n * V + i];
    }
    EXPECT_NEAR(row, 0.0, 2e-3) << "row " << n;  // lse off by <= 5e-4 scales the softmax by exp(5e-4)
  }
}

// ---- AdamW

TEST(AdamW, MatchesDoubleReferenceOverThreeSteps) {
  const size_t n = 37;
  const AdamWParams p{1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f};
  const float grad_scale = 0.5f;
  Floats param = randn(n, 35), m(n, 0.0f), v(n, 0.0f);
  Vec rp = to_d(param), rm(n, 0), rv(n, 0);
  for (int step = 1; step <= 3; ++step) {
    Floats grad = randn(n, 100 + step);
    adamw_update(param.data(), grad.data(), m.data(), v.data(), n, p, grad_scale, step);
    for (size_t i = 0; i < n; ++i) {
      double g = double(grad[i]) * grad_scale;
      rm[i] = double(p.beta1) * rm[i] + (1 - double(p.beta1)) * g;
      rv[i] = double(p.beta2) * rv[i] + (1 - double(p.beta2)) * g * g;
      double mhat = rm[i] / (1 - std::pow(double(p.beta1), step));
      double vhat = rv[i] / (1 - std::pow(double(p.beta2), step));
      rp[i] -= double(p.lr) * (mhat / (std::sqrt(vhat) + p.eps) + double(p.weight_decay) * rp[i]);
    }
    expect_close(m, rm, 1e-5, 1e-7, "m");
    expect_close(v, rv, 1e-5, 1e-9, "v");
    expect_close(param, rp, 1e-5, 1e-6, "param");
  }
}

// With no gradient history only the decoupled decay acts: param *= 1 - lr * wd.
TEST(AdamW, DecayIsDecoupledFromTheGradient) {
  const AdamWParams p{1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f};
  Floats param = {2.0f, -3.0f}, grad = {0.0f, 0.0f}, m(2, 0.0f), v(2, 0.0f);
  adamw_update(param.data(), grad.data(), m.data(), v.data(), 2, p, 1.0f, 1);
  EXPECT_FLOAT_EQ(param[0], 2.0f * (1 - 1e-3f));
  EXPECT_FLOAT_EQ(param[1], -3.0f * (1 - 1e-3f));
}

}  // namespace
}  // namespace rw::cpu
