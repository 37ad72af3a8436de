// Blockwise attention (FlashAttention-2 schedule): scores exist only as one key-block x query-block
// tile, the softmax is online, and the backward recomputes probabilities from the saved lse.
//
// Tiles hold scores transposed, St[key, query], so the query tile is transposed once per query
// block and key/value rows are read in place; the micro-kernel reads its left operand with any
// strides, which lets St serve as both P^T and P without another transpose. Hand-written because
// OpenBLAS sgemm on 64 x 64 x 64 tiles spends its time packing and dispatching (28 against 135
// GFLOP/s on one AVX-512 core when measured).
//
// Determinism: forward tasks own (b, h, query block); backward tasks own (b, kv head), so dk/dv
// of a kv head and dq of its query heads are written by one thread in a shape-fixed order.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "core/cpu/fast_exp.h"
#include "core/ops.h"

namespace rw::cpu {
namespace {

constexpr int kRows = 4;   // micro-kernel rows; a GEMM's M is padded to this
constexpr int kCols = 16;  // floats per 512-bit register; a GEMM's N is padded to this

int round_up(int x, int m) { return (x + m - 1) / m * m; }

// GCC/Clang vector extension: plain C++ that stays in zmm registers, where auto-vectorising the
// same loops picked narrower lanes and spilled the accumulators.
// Loads and stores go through memcpy (unaligned, no aliasing questions).
using vec = float __attribute__((vector_size(kCols * sizeof(float))));

// C[4, 16 NV] (+)= A[4, K] B[K, 16 NV], A[r, p] = A[r * a_rs + p * a_cs].
template <int NV, bool kAccumulate>
inline void micro_kernel(float* C, int ldc, const float* A, int a_rs, int a_cs, const float* B, int ldb, int K) {
  vec acc[kRows][NV] = {};
  if (kAccumulate)
    for (int r = 0; r < kRows; ++r)
      for (int c = 0; c < NV; ++c) std::memcpy(&acc[r][c], C + r * ldc + c * kCols, sizeof(vec));
  for (int p = 0; p < K; ++p) {
    vec b[NV];
    for (int c = 0; c < NV; ++c) std::memcpy(&b[c], B + p * ldb + c * kCols, sizeof(vec));
    for (int r = 0; r < kRows; ++r) {
      const float a = A[r * a_rs + p * a_cs];
      for (int c = 0; c < NV; ++c) acc[r][c] += a * b[c];
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < NV; ++c) std::memcpy(C + r * ldc + c * kCols, &acc[r][c], sizeof(vec));
}

// Which part of a GEMM one group of kRows output rows needs: columns from n0 (a multiple of kCols)
// and the inner index in [k0, k1). Causal tiles skip what the mask zeroes; elsewhere it is all.
struct Span {
  int n0, k0, k1;
};

// C[M, N] (+)= A[M, K] B[K, N], restricted per row group to span(i); M a multiple of kRows, N of
// kCols, B and C row-major. Columns before n0 are left as they were.
template <bool kAccumulate, typename SpanOf>
void gemm_tile(float* C, int ldc, const float* A, int a_rs, int a_cs, const float* B, int ldb, int M, int N,
               SpanOf span) {
  for (int i = 0; i < M; i += kRows) {
    const Span sp = span(i);
    const float* a = A + i * a_rs + sp.k0 * a_cs;
    const float* b = B + sp.k0 * ldb;
    const int K = std::max(sp.k1 - sp.k0, 0);
    float* c = C + i * ldc;
    int j = sp.n0;
    for (; j + 4 * kCols <= N; j += 4 * kCols) micro_kernel<4, kAccumulate>(c + j, ldc, a, a_rs, a_cs, b + j, ldb, K);
    if (j + 2 * kCols <= N) {
      micro_kernel<2, kAccumulate>(c + j, ldc, a, a_rs, a_cs, b + j, ldb, K);
      j += 2 * kCols;
    }
    if (j < N) micro_kernel<1, kAccumulate>(c + j, ldc, a, a_rs, a_cs, b + j, ldb, K);
  }
}

// dst[r, c] = src[r * src_ld + c] * mul for r < rows, c < cols.
void load_rows(float* dst, int ld, const float* src, size_t src_ld, int rows, int cols, float mul) {
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) dst[r * ld + c] = src[r * src_ld + c] * mul;
}

// dst[c, r] = src[r * src_ld + c] * mul: a [rows, cols] block stored transposed.
void load_transposed(float* dst, int ld, const float* src, size_t src_ld, int rows, int cols, float mul) {
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) dst[c * ld + r] = src[r * src_ld + c] * mul;
}

// Per-thread zeroed tiles, handed out as raw pointers so the vectoriser sees plain arrays.
class Scratch {
 public:
  float* take(size_t n) { return tiles_.emplace_back(n, 0.0f).data(); }

 private:
  std::vector<std::vector<float>> tiles_;  // moving a vector keeps its buffer, so pointers stay valid
};

// Rows [j0, j0 + nk) of one kv head as a GEMM operand: read in place when the GEMMs' rounding (rows
// to kRows, columns to kCols) stays inside the tile, else copied into buf ([bk4, Dp], zero-padded).
struct KvTile {
  const float* p;
  int ld;
};
KvTile kv_tile(const float* head, size_t kv_ld, int j0, int nk, int D, float* buf) {
  const float* src = head + j0 * kv_ld;
  if (nk % kRows == 0 && D % kCols == 0) return {src, static_cast<int>(kv_ld)};
  const int Dp = round_up(D, kCols);
  load_rows(buf, Dp, src, kv_ld, nk, D, 1.0f);
  return {buf, Dp};
}

// One (query block, key block) pair at global positions, and the GEMM spans its causal mask allows.
struct TilePair {
  const AttentionShape& s;
  int i0, nq, j0, nk;
  // Queries i >= first_query(j) see key j of the tile.
  int first_query(int j) const { return s.causal ? s.k_offset + j0 + j - s.q_offset - i0 : 0; }
  // Output rows are keys, columns queries: skip query vectors the group's first key hides from.
  Span key_rows_by_query(int j, int K) const { return {std::clamp(first_query(j), 0, nq) / kCols * kCols, 0, K}; }
  // Output rows are queries, summing over keys: stop after the last key the group's last row sees.
  Span query_rows_over_keys(int i) const {
    return {0, 0, s.causal ? std::clamp(i + kRows - first_query(0), 0, nk) : nk};
  }
  // Output rows are keys, summing over queries: start at the first query that sees the group's first key.
  Span key_rows_over_queries(int j) const { return {0, std::clamp(first_query(j), 0, nq), nq}; }
};

void check_shape(const AttentionShape& s) {
  RW_CHECK(s.KH > 0 && s.H % s.KH == 0 && s.D > 0 && s.block_q > 0 && s.block_k > 0,
           "attention shape H=%d KH=%d D=%d block_q=%d block_k=%d", s.H, s.KH, s.D, s.block_q, s.block_k);
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttentionShape& s) {
  check_shape(s);
  const int D = s.D, Dp = round_up(D, kCols), G = s.H / s.KH;
  const int bq = s.block_q, bk = s.block_k, ldq = round_up(bq, kCols), bk4 = round_up(bk, kRows);
  const int nqb = (s.Tq + bq - 1) / bq;
  const size_t q_ld = static_cast<size_t>(s.H) * D, kv_ld = static_cast<size_t>(s.KH) * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int64_t ntask = static_cast<int64_t>(s.B) * s.H * nqb;

#pragma omp parallel
  {
    Scratch scratch;
    float *Qt = scratch.take(D * ldq), *Kc = scratch.take(bk4 * Dp), *Vc = scratch.take(bk4 * Dp);
    float *St = scratch.take(bk4 * ldq), *acc = scratch.take(ldq * Dp);
    float *m = scratch.take(ldq), *l = scratch.take(ldq), *m_new = scratch.take(ldq), *alpha = scratch.take(ldq);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < ntask; ++t) {
      // Last query blocks first: under causal masking they are the longest, which balances threads.
      const int qb = nqb - 1 - static_cast<int>(t % nqb);
      const int h = static_cast<int>(t / nqb % s.H), b = static_cast<int>(t / nqb / s.H), kh = h / G;
      const int i0 = qb * bq, nq = std::min(bq, s.Tq - i0), nq4 = round_up(nq, kRows);
      const size_t q_row0 = (static_cast<size_t>(b) * s.Tq + i0) * q_ld + static_cast<size_t>(h) * D;
      const float* kb = k + static_cast<size_t>(b) * s.Tk * kv_ld + static_cast<size_t>(kh) * D;
      const float* vb = v + static_cast<size_t>(b) * s.Tk * kv_ld + static_cast<size_t>(kh) * D;

      load_transposed(Qt, ldq, q + q_row0, q_ld, nq, D, scale);
      std::fill(acc, acc + ldq * Dp, 0.0f);
      std::fill(m, m + ldq, -INFINITY);
      std::fill(l, l + ldq, 0.0f);
      // Keys past what the block's last query may see are skipped whole.
      const int key_end = s.causal ? std::clamp(s.q_offset + i0 + nq - s.k_offset, 0, s.Tk) : s.Tk;
      for (int j0 = 0; j0 < key_end; j0 += bk) {
        const int nk = std::min(bk, s.Tk - j0);
        const TilePair tp{s, i0, nq, j0, nk};
        const KvTile kt = kv_tile(kb, kv_ld, j0, nk, D, Kc), vt = kv_tile(vb, kv_ld, j0, nk, D, Vc);
        gemm_tile<false>(St, ldq, kt.p, kt.ld, 1, Qt, ldq, round_up(nk, kRows), round_up(nq, kCols),
                         [&](int j) { return tp.key_rows_by_query(j, D); });

        std::copy(m, m + ldq, m_new);
        for (int j = 0; j < nk; ++j) {
          float* st = St + j * ldq;
          std::fill(st, st + std::clamp(tp.first_query(j), 0, nq), -INFINITY);
#pragma omp simd
          for (int i = 0; i < nq; ++i) m_new[i] = std::max(m_new[i], st[i]);
        }
        // The exponent reference is the new max, or 0 while a row has seen no key (its scores are
        // all -inf, and -inf - -inf would be NaN).
        for (int i = 0; i < nq; ++i) {
          const float ref = m_new[i] == -INFINITY ? 0.0f : m_new[i];
          alpha[i] = fast_exp(m[i] - ref);
          l[i] *= alpha[i];
          m[i] = m_new[i];
          m_new[i] = ref;
        }
        // Row sums run sequentially over keys, vectorised across queries: a fixed order.
        for (int j = 0; j < nk; ++j) {
          float* st = St + j * ldq;
#pragma omp simd
          for (int i = 0; i < nq; ++i) {
            st[i] = fast_exp(st[i] - m_new[i]);
            l[i] += st[i];
          }
        }
        for (int i = 0; i < nq; ++i)
          for (int d = 0; d < D; ++d) acc[i * Dp + d] *= alpha[i];
        gemm_tile<true>(acc, Dp, St, 1, ldq, vt.p, vt.ld, nq4, Dp, [&](int i) { return tp.query_rows_over_keys(i); });
      }
      for (int i = 0; i < nq; ++i) {
        float* o = out + q_row0 + i * q_ld;
        const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
        for (int d = 0; d < D; ++d) o[d] = acc[i * Dp + d] * inv;
        lse[(static_cast<size_t>(b) * s.H + h) * s.Tq + i0 + i] = l[i] > 0.0f ? m[i] + std::log(l[i]) : -INFINITY;
      }
    }
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const AttentionShape& s) {
  check_shape(s);
  const int D = s.D, Dp = round_up(D, kCols), G = s.H / s.KH;
  const int bq = s.block_q, bk = s.block_k, ldq = round_up(bq, kCols), bk4 = round_up(bk, kRows);
  const size_t q_ld = static_cast<size_t>(s.H) * D, kv_ld = static_cast<size_t>(s.KH) * D;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const int ntask = s.B * s.KH;

#pragma omp parallel
  {
    // dK, dV span the whole kv head; the extra kRows rows absorb the last tile's rounded-up rows.
    const size_t kv_size = static_cast<size_t>(s.Tk + kRows) * Dp;
    Scratch scratch;
    float *Qs = scratch.take(ldq * Dp), *Qt = scratch.take(D * ldq), *dO = scratch.take(ldq * Dp);
    float *dOt = scratch.take(D * ldq), *Kc = scratch.take(bk4 * Dp), *Vc = scratch.take(bk4 * Dp);
    float *Pt = scratch.take(bk4 * ldq), *dSt = scratch.take(bk4 * ldq), *dQ = scratch.take(ldq * Dp);
    float *Di = scratch.take(ldq), *lse_i = scratch.take(ldq), *dK = scratch.take(kv_size), *dV = scratch.take(kv_size);
#pragma omp for schedule(dynamic, 1)
    for (int t = 0; t < ntask; ++t) {
      const int b = t / s.KH, kh = t % s.KH;
      const float* kb = k + static_cast<size_t>(b) * s.Tk * kv_ld + static_cast<size_t>(kh) * D;
      const float* vb = v + static_cast<size_t>(b) * s.Tk * kv_ld + static_cast<size_t>(kh) * D;
      std::fill(dK, dK + kv_size, 0.0f);
      std::fill(dV, dV + kv_size, 0.0f);
      for (int h = kh * G; h < (kh + 1) * G; ++h) {
        for (int i0 = 0; i0 < s.Tq; i0 += bq) {
          const int nq = std::min(bq, s.Tq - i0), nq4 = round_up(nq, kRows), nq16 = round_up(nq, kCols);
          const size_t q_row0 = (static_cast<size_t>(b) * s.Tq + i0) * q_ld + static_cast<size_t>(h) * D;
          load_rows(Qs, Dp, q + q_row0, q_ld, nq, D, scale);
          load_transposed(Qt, ldq, q + q_row0, q_ld, nq, D, scale);
          load_rows(dO, Dp, dout + q_row0, q_ld, nq, D, 1.0f);
          load_transposed(dOt, ldq, dout + q_row0, q_ld, nq, D, 1.0f);
          for (int i = 0; i < nq; ++i) {
            const float* o = out + q_row0 + i * q_ld;
            const float* go = dout + q_row0 + i * q_ld;
            float sum = 0.0f;
            for (int d = 0; d < D; ++d) sum += o[d] * go[d];
            Di[i] = sum;
            // lse = -inf: the row saw no key at all; +inf makes every P exactly 0.
            const float li = lse[(static_cast<size_t>(b) * s.H + h) * s.Tq + i0 + i];
            lse_i[i] = li == -INFINITY ? INFINITY : li;
          }
          std::fill(dQ, dQ + ldq * Dp, 0.0f);

          const int key_end = s.causal ? std::clamp(s.q_offset + i0 + nq - s.k_offset, 0, s.Tk) : s.Tk;
          for (int j0 = 0; j0 < key_end; j0 += bk) {
            const int nk = std::min(bk, s.Tk - j0), nk4 = round_up(nk, kRows);
            const TilePair tp{s, i0, nq, j0, nk};
            const KvTile kt = kv_tile(kb, kv_ld, j0, nk, D, Kc), vt = kv_tile(vb, kv_ld, j0, nk, D, Vc);
            auto by_query = [&](int j) { return tp.key_rows_by_query(j, D); };
            auto over_queries = [&](int j) { return tp.key_rows_over_queries(j); };
            auto over_keys = [&](int i) { return tp.query_rows_over_keys(i); };
            gemm_tile<false>(Pt, ldq, kt.p, kt.ld, 1, Qt, ldq, nk4, nq16, by_query);
            gemm_tile<false>(dSt, ldq, vt.p, vt.ld, 1, dOt, ldq, nk4, nq16, by_query);
            // Rows nk..nk4 become zero too: the dK/dV products below write them into the next tile's rows.
            for (int j = 0; j < nk4; ++j) {
              float* p = Pt + j * ldq;
              float* ds = dSt + j * ldq;
              const int first = j < nk ? tp.first_query(j) : nq;
#pragma omp simd
              for (int i = 0; i < nq; ++i) {
                // Masked entries may hold stale scores the GEMM skipped: select, never multiply.
                p[i] = i >= first ? fast_exp(p[i] - lse_i[i]) : 0.0f;
                ds[i] = i >= first ? p[i] * (ds[i] - Di[i]) : 0.0f;
              }
            }
            gemm_tile<true>(dV + j0 * Dp, Dp, Pt, ldq, 1, dO, Dp, nk4, Dp, over_queries);
            gemm_tile<true>(dK + j0 * Dp, Dp, dSt, ldq, 1, Qs, Dp, nk4, Dp, over_queries);
            gemm_tile<true>(dQ, Dp, dSt, 1, ldq, kt.p, kt.ld, nq4, Dp, over_keys);
          }
          for (int i = 0; i < nq; ++i)
            for (int d = 0; d < D; ++d) dq[q_row0 + i * q_ld + d] += scale * dQ[i * Dp + d];
        }
      }
      for (int j = 0; j < s.Tk; ++j)
        for (int d = 0; d < D; ++d) {
          const size_t g = (static_cast<size_t>(b) * s.Tk + j) * kv_ld + static_cast<size_t>(kh) * D + d;
          dk[g] += dK[j * Dp + d];
          dv[g] += dV[j * Dp + d];
        }
    }
  }
}

void attention_merge(float* out, float* lse, const float* out_b, const float* lse_b, int B, int Tq, int H, int D) {
  const int64_t rows = static_cast<int64_t>(B) * H * Tq;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {  // r indexes lse [B, H, Tq]
    const int64_t b = r / (static_cast<int64_t>(H) * Tq), h = r / Tq % H, i = r % Tq;
    float* o = out + ((b * Tq + i) * H + h) * D;
    const float* ob = out_b + ((b * Tq + i) * H + h) * D;
    const float la = lse[r], lb = lse_b[r];
    // A partial result that saw no key changes nothing (and -inf - -inf below would be NaN); the
    // running result alone being -inf needs no case: its weight comes out as exp(-inf) = 0.
    if (lb == -INFINITY) continue;
    const float lnew = std::max(la, lb) + std::log1p(std::exp(-std::fabs(la - lb)));
    const float wa = std::exp(la - lnew), wb = std::exp(lb - lnew);
    for (int d = 0; d < D; ++d) o[d] = o[d] * wa + ob[d] * wb;
    lse[r] = lnew;
  }
}

}  // namespace rw::cpu
