// Blockwise attention against a naive double-precision reference written here (full score matrix,
// mask, softmax; the backward straight from the softmax Jacobian), over block sizes that do and do
// not divide the sequence, GQA, offsets, and the properties ring attention and the trainer rely
// on: merging partial results, accumulating gradients, and bits independent of the thread count.
//
// Tolerance: inputs are N(0, 1), so scores are O(1) and every output is a float sum of at most a
// few hundred O(1) terms, with relative error near 1e-6. Checks allow |got - want| <= 1e-4 *
// (1 + |want|); a wrong mask, scale or missing term is off by O(0.1).
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

using Floats = std::vector<float>;
using Vec = std::vector<double>;

constexpr double kTol = 1e-4;

Floats randn(size_t n, uint64_t seed) {
  Rng rng(seed);
  Floats x(n);
  for (float& v : x) v = rng.normal();
  return x;
}

size_t q_size(const AttentionShape& s) { return static_cast<size_t>(s.B) * s.Tq * s.H * s.D; }
size_t kv_size(const AttentionShape& s) { return static_cast<size_t>(s.B) * s.Tk * s.KH * s.D; }
size_t lse_size(const AttentionShape& s) { return static_cast<size_t>(s.B) * s.H * s.Tq; }

struct Inputs {
  Floats q, k, v, dout;
};

Inputs random_inputs(const AttentionShape& s, uint64_t seed) {
  return {randn(q_size(s), seed), randn(kv_size(s), seed + 1), randn(kv_size(s), seed + 2),
          randn(q_size(s), seed + 3)};
}

struct Result {
  Floats out, lse, dq, dk, dv;
};

// Forward, then backward into zeroed gradients.
Result run(const AttentionShape& s, const Inputs& in) {
  Result r{Floats(q_size(s)), Floats(lse_size(s)), Floats(q_size(s)), Floats(kv_size(s)), Floats(kv_size(s))};
  attention_forward(r.out.data(), r.lse.data(), in.q.data(), in.k.data(), in.v.data(), s);
  attention_backward(r.dq.data(), r.dk.data(), r.dv.data(), in.dout.data(), in.q.data(), in.k.data(), in.v.data(),
                     r.out.data(), r.lse.data(), s);
  return r;
}

struct Reference {
  Vec out, lse, dq, dk, dv;
};

Reference reference(const AttentionShape& s, const Inputs& in) {
  Reference r{Vec(q_size(s)), Vec(lse_size(s)), Vec(q_size(s)), Vec(kv_size(s)), Vec(kv_size(s))};
  const int D = s.D;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  auto qi = [&](int b, int i, int h) { return ((static_cast<size_t>(b) * s.Tq + i) * s.H + h) * D; };
  auto kj = [&](int b, int j, int kh) { return ((static_cast<size_t>(b) * s.Tk + j) * s.KH + kh) * D; };
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.H; ++h) {
      const int kh = h / (s.H / s.KH);
      for (int i = 0; i < s.Tq; ++i) {
        const size_t lse_at = (static_cast<size_t>(b) * s.H + h) * s.Tq + i;
        Vec score(s.Tk, -INFINITY);
        double mx = -INFINITY;
        for (int j = 0; j < s.Tk; ++j) {
          if (s.causal && s.k_offset + j > s.q_offset + i) continue;
          double dot = 0;
          for (int d = 0; d < D; ++d) dot += double(in.q[qi(b, i, h) + d]) * in.k[kj(b, j, kh) + d];
          score[j] = dot * scale;
          mx = std::max(mx, score[j]);
        }
        if (mx == -INFINITY) {  // no visible key
          r.lse[lse_at] = -INFINITY;
          continue;
        }
        double sum = 0;
        for (int j = 0; j < s.Tk; ++j) sum += std::exp(score[j] - mx);
        r.lse[lse_at] = mx + std::log(sum);
        Vec p(s.Tk), dp(s.Tk);
        double p_dot_dp = 0;
        for (int j = 0; j < s.Tk; ++j) {
          p[j] = std::exp(score[j] - r.lse[lse_at]);
          for (int d = 0; d < D; ++d) {
            r.out[qi(b, i, h) + d] += p[j] * in.v[kj(b, j, kh) + d];
            dp[j] += double(in.dout[qi(b, i, h) + d]) * in.v[kj(b, j, kh) + d];
          }
          p_dot_dp += p[j] * dp[j];
        }
        // Softmax Jacobian: dscore_j = p_j (dp_j - sum_j' p_j' dp_j').
        for (int j = 0; j < s.Tk; ++j) {
          const double ds = p[j] * (dp[j] - p_dot_dp) * scale;
          for (int d = 0; d < D; ++d) {
            r.dq[qi(b, i, h) + d] += ds * in.k[kj(b, j, kh) + d];
            r.dk[kj(b, j, kh) + d] += ds * in.q[qi(b, i, h) + d];
            r.dv[kj(b, j, kh) + d] += p[j] * in.dout[qi(b, i, h) + d];
          }
        }
      }
    }
  return r;
}

// Largest |got - want| / (1 + |want|); -inf must match -inf exactly.
double max_error(const Floats& got, const Vec& want) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isinf(want[i]) || std::isinf(got[i])) {
      if (got[i] != want[i]) return INFINITY;
      continue;
    }
    worst = std::max(worst, std::fabs(got[i] - want[i]) / (1 + std::fabs(want[i])));
    if (std::isnan(got[i])) return INFINITY;
  }
  return worst;
}

AttentionShape shape(int Tq, int Tk, int H, int KH, int D, bool causal, int bq, int bk, int q_offset = 0,
                     int k_offset = 0) {
  AttentionShape s;
  s.B = 2, s.Tq = Tq, s.Tk = Tk, s.H = H, s.KH = KH, s.D = D, s.causal = causal;
  s.block_q = bq, s.block_k = bk, s.q_offset = q_offset, s.k_offset = k_offset;
  return s;
}

void expect_matches_reference(const AttentionShape& s, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "Tq=" << s.Tq << " Tk=" << s.Tk << " H=" << s.H << " KH=" << s.KH
                                  << " D=" << s.D << " causal=" << s.causal << " block " << s.block_q << "x"
                                  << s.block_k << " offsets " << s.q_offset << "," << s.k_offset);
  const Inputs in = random_inputs(s, seed);
  const Result got = run(s, in);
  const Reference want = reference(s, in);
  EXPECT_LE(max_error(got.out, want.out), kTol);
  EXPECT_LE(max_error(got.lse, want.lse), kTol);
  EXPECT_LE(max_error(got.dq, want.dq), kTol);
  EXPECT_LE(max_error(got.dk, want.dk), kTol);
  EXPECT_LE(max_error(got.dv, want.dv), kTol);
}

TEST(Attention, MatchesReferenceAcrossBlockSizes) {
  const int blocks[][2] = {{1, 1}, {3, 3}, {16, 16}, {64, 64}, {3, 16}, {16, 3}, {64, 16}, {1, 64}};
  uint64_t seed = 100;
  for (const auto& bl : blocks)
    for (bool causal : {true, false}) {
      expect_matches_reference(shape(37, 37, 4, 2, 16, causal, bl[0], bl[1]), seed++);
      expect_matches_reference(shape(100, 100, 4, 1, 32, causal, bl[0], bl[1]), seed++);
    }
}

TEST(Attention, MatchesReferenceForHeadLayouts) {
  uint64_t seed = 200;
  for (int KH : {4, 2, 1})
    for (int D : {8, 40, 64}) {  // 8 and 40 are not multiples of the 16-float vector
      expect_matches_reference(shape(50, 50, 4, KH, D, true, 16, 16), seed++);
      expect_matches_reference(shape(50, 50, 4, KH, D, false, 64, 16), seed++);
    }
}

// Ring attention hands in query and key chunks at different global positions.
TEST(Attention, MatchesReferenceWithOffsets) {
  uint64_t seed = 300;
  for (int bl : {3, 16, 64}) {
    expect_matches_reference(shape(37, 50, 4, 2, 16, true, bl, bl, 0, 10), seed++);   // first rows see nothing
    expect_matches_reference(shape(30, 50, 4, 2, 16, true, bl, bl, 100, 0), seed++);  // keys all in the past
    expect_matches_reference(shape(20, 50, 4, 1, 16, true, bl, bl, 30, 0), seed++);   // a later query chunk
    expect_matches_reference(shape(32, 32, 4, 2, 16, true, bl, bl, 0, 64), seed++);   // keys all in the future
    expect_matches_reference(shape(37, 50, 4, 2, 16, false, bl, bl, 0, 10), seed++);  // offsets ignored
  }
}

TEST(Attention, RowsThatSeeNoKeyAreZeroWithMinusInfLse) {
  const AttentionShape s = shape(37, 40, 4, 2, 16, true, 16, 16, /*q_offset=*/0, /*k_offset=*/10);
  const Inputs in = random_inputs(s, 400);
  const Result r = run(s, in);
  for (int b = 0; b < s.B; ++b)
    for (int h = 0; h < s.H; ++h)
      for (int i = 0; i < s.Tq; ++i) {
        const float lse = r.lse[(static_cast<size_t>(b) * s.H + h) * s.Tq + i];
        const float* o = r.out.data() + ((static_cast<size_t>(b) * s.Tq + i) * s.H + h) * s.D;
        const float* g = r.dq.data() + ((static_cast<size_t>(b) * s.Tq + i) * s.H + h) * s.D;
        if (i < s.k_offset) {
          EXPECT_EQ(lse, -INFINITY) << "row " << i;
          for (int d = 0; d < s.D; ++d) EXPECT_EQ(o[d], 0.0f) << "row " << i;
          for (int d = 0; d < s.D; ++d) EXPECT_EQ(g[d], 0.0f) << "row " << i;
        } else {
          EXPECT_TRUE(std::isfinite(lse)) << "row " << i;
        }
      }
}

// Keys [lo, hi) of every batch as their own tensor, as one ring step would receive them.
Floats key_range(const Floats& x, const AttentionShape& s, int lo, int hi) {
  const size_t row = static_cast<size_t>(s.KH) * s.D;
  Floats r;
  for (int b = 0; b < s.B; ++b)
    r.insert(r.end(), x.begin() + (static_cast<size_t>(b) * s.Tk + lo) * row,
             x.begin() + (static_cast<size_t>(b) * s.Tk + hi) * row);
  return r;
}

// Attention over all keys equals merging attention over the two halves, in either order. With
// causal masking the later half is invisible to early rows (lse_b = -inf), and with k_offset some
// rows see neither half (both -inf).
TEST(Attention, MergeOfKeyHalvesEqualsFullAttention) {
  for (bool causal : {true, false})
    for (int k_offset : {0, 10}) {
      SCOPED_TRACE(testing::Message() << "causal=" << causal << " k_offset=" << k_offset);
      const AttentionShape s = shape(50, 50, 4, 2, 16, causal, 16, 16, 0, k_offset);
      const Inputs in = random_inputs(s, 500 + k_offset + causal);
      Floats out(q_size(s)), lse(lse_size(s));
      attention_forward(out.data(), lse.data(), in.q.data(), in.k.data(), in.v.data(), s);

      const int half = 23;
      Floats part_out[2] = {Floats(q_size(s)), Floats(q_size(s))};
      Floats part_lse[2] = {Floats(lse_size(s)), Floats(lse_size(s))};
      for (int p = 0; p < 2; ++p) {
        AttentionShape ps = s;
        const int lo = p == 0 ? 0 : half, hi = p == 0 ? half : s.Tk;
        ps.Tk = hi - lo;
        ps.k_offset = s.k_offset + lo;
        const Floats k = key_range(in.k, s, lo, hi), v = key_range(in.v, s, lo, hi);
        attention_forward(part_out[p].data(), part_lse[p].data(), in.q.data(), k.data(), v.data(), ps);
      }
      for (int first : {0, 1}) {
        Floats m_out = part_out[first], m_lse = part_lse[first];
        attention_merge(m_out.data(), m_lse.data(), part_out[1 - first].data(), part_lse[1 - first].data(), s.B,
                        s.Tq, s.H, s.D);
        // Float merge of float partials: a few ulp of O(1) values.
        EXPECT_LE(max_error(m_out, Vec(out.begin(), out.end())), 1e-5);
        EXPECT_LE(max_error(m_lse, Vec(lse.begin(), lse.end())), 1e-5);
      }
    }
}

// Backward accumulates: a second call into the same buffers doubles them (up to one rounding,
// since the kernel's final add may fuse into an FMA).
TEST(Attention, BackwardAccumulates) {
  const AttentionShape s = shape(50, 50, 4, 2, 16, true, 16, 16);
  const Inputs in = random_inputs(s, 600);
  Result once = run(s, in);
  Result twice = once;
  attention_backward(twice.dq.data(), twice.dk.data(), twice.dv.data(), in.dout.data(), in.q.data(), in.k.data(),
                     in.v.data(), once.out.data(), once.lse.data(), s);
  auto doubled = [](const Floats& x) {
    Vec r(x.size());
    for (size_t i = 0; i < x.size(); ++i) r[i] = 2.0 * x[i];
    return r;
  };
  EXPECT_LE(max_error(twice.dq, doubled(once.dq)), 1e-6);
  EXPECT_LE(max_error(twice.dk, doubled(once.dk)), 1e-6);
  EXPECT_LE(max_error(twice.dv, doubled(once.dv)), 1e-6);
}

TEST(Attention, BitsIndependentOfThreadCount) {
  const AttentionShape s = shape(100, 100, 4, 2, 32, true, 16, 32);
  const Inputs in = random_inputs(s, 700);
  const int saved = omp_get_max_threads();
  Result by_threads[3];
  for (int t = 0; t < 3; ++t) {
    omp_set_num_threads(t + 1);
    by_threads[t] = run(s, in);
  }
  omp_set_num_threads(saved);
  auto same = [](const Floats& a, const Floats& b) { return std::memcmp(a.data(), b.data(), a.size() * 4) == 0; };
  for (int t = 1; t < 3; ++t) {
    SCOPED_TRACE(testing::Message() << (t + 1) << " threads vs 1");
    EXPECT_TRUE(same(by_threads[0].out, by_threads[t].out));
    EXPECT_TRUE(same(by_threads[0].lse, by_threads[t].lse));
    EXPECT_TRUE(same(by_threads[0].dq, by_threads[t].dq));
    EXPECT_TRUE(same(by_threads[0].dk, by_threads[t].dk));
    EXPECT_TRUE(same(by_threads[0].dv, by_threads[t].dv));
  }
}

// The backward against central differences of the kernel's own forward, L = sum(out * W): checks
// the gradient of what the forward computes, independently of the reference above. Steps of 1e-2
// keep float rounding of L (~1e-6, divided by the step) and the O(step^2) truncation both near
// 1e-4; allowed 1e-3 + 1e-2 * |grad|, against O(0.1) for a wrong gradient.
TEST(Attention, BackwardMatchesFiniteDifferences) {
  AttentionShape s = shape(9, 9, 2, 1, 8, true, 4, 3);
  s.B = 1;
  Inputs in = random_inputs(s, 800);
  const Floats W = in.dout;
  const Result r = run(s, in);
  auto loss = [&](const Inputs& x) {
    Floats out(q_size(s)), lse(lse_size(s));
    attention_forward(out.data(), lse.data(), x.q.data(), x.k.data(), x.v.data(), s);
    double L = 0;
    for (size_t i = 0; i < out.size(); ++i) L += double(out[i]) * W[i];
    return L;
  };
  const double eps = 1e-2;
  struct Wrt {
    const char* name;
    Floats Inputs::*x;
    const Floats& grad;
  };
  for (const Wrt& w : {Wrt{"q", &Inputs::q, r.dq}, Wrt{"k", &Inputs::k, r.dk}, Wrt{"v", &Inputs::v, r.dv}}) {
    Floats& x = in.*w.x;
    for (size_t i = 0; i < x.size(); ++i) {
      const float x0 = x[i], xp = x0 + float(eps), xm = x0 - float(eps);
      x[i] = xp;
      const double lp = loss(in);
      x[i] = xm;
      const double lm = loss(in);
      x[i] = x0;
      const double numeric = (lp - lm) / (double(xp) - double(xm));  // the steps float actually took
      EXPECT_NEAR(w.grad[i], numeric, 1e-3 + 1e-2 * std::fabs(numeric)) << "d" << w.name << "[" << i << "]";
    }
  }
}

}  // namespace
}  // namespace rw::cpu
