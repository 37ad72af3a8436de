// Blockwise attention on CUDA cores: a straightforward tiling, not yet tensor cores (mma/wgmma
// would come next). One thread owns one query row (forward, dq) or one key row (dk, dv) and keeps
// it, its accumulators and the running softmax statistics in registers/local memory; the other
// operand is staged through shared memory a tile at a time. Statistics and accumulation are fp32.
//
// Causal tiles that lie wholly in the future are skipped, so causal work is about half.
#include <cmath>

#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_check.h"
#include "core/cuda/ops.h"

namespace rw::cuda {

namespace {

constexpr int kMaxD = kMaxAttentionHeadDim;
constexpr int kRows = 64;  // rows owned per block (threads per block)
constexpr int kTile = 32;  // rows of the other operand staged in shared memory per step

__device__ inline size_t qidx(const AttentionShape& s, int b, int i, int h) {
  return ((size_t(b) * s.Tq + i) * s.H + h) * s.D;
}
__device__ inline size_t kidx(const AttentionShape& s, int b, int j, int kh) {
  return ((size_t(b) * s.Tk + j) * s.KH + kh) * s.D;
}
__device__ inline size_t lidx(const AttentionShape& s, int b, int h, int i) {
  return (size_t(b) * s.H + h) * s.Tq + i;
}
__device__ inline bool visible(const AttentionShape& s, int i, int j) {
  return !s.causal || s.k_offset + j <= s.q_offset + i;
}

// Stages rows [r0, r0 + kTile) of a [B, T, heads, D] tensor (head `hd`) into dst[kTile][kMaxD];
// rows past T read as zero.
__device__ inline void stage_rows(float (*dst)[kMaxD], const float* src, int b, int r0, int T, int heads, int hd,
                                  int D) {
  for (int e = threadIdx.x; e < kTile * D; e += blockDim.x) {
    const int r = e / D, d = e % D;
    dst[r][d] = r0 + r < T ? src[((size_t(b) * T + r0 + r) * heads + hd) * D + d] : 0.0f;
  }
}

__global__ void attention_forward_kernel(float* out, float* lse, const float* q, const float* k, const float* v,
                                         AttentionShape s, float scale) {
  __shared__ float ks[kTile][kMaxD], vs[kTile][kMaxD];
  const int b = blockIdx.z, h = blockIdx.y, kh = h / (s.H / s.KH);
  const int first = blockIdx.x * kRows, i = first + threadIdx.x;
  const int last = min(first + kRows, s.Tq) - 1;
  const bool active = i < s.Tq;
  const int D = s.D;
  float qr[kMaxD], acc[kMaxD];
  for (int d = 0; d < D; ++d) {
    qr[d] = active ? q[qidx(s, b, i, h) + d] * scale : 0.0f;
    acc[d] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int j0 = 0; j0 < s.Tk; j0 += kTile) {
    if (!visible(s, last, j0)) break;  // this tile and all later ones are in every row's future
    __syncthreads();
    stage_rows(ks, k, b, j0, s.Tk, s.KH, kh, D);
    stage_rows(vs, v, b, j0, s.Tk, s.KH, kh, D);
    __syncthreads();
    if (!active) continue;
    float sc[kTile];
    float tile_max = -INFINITY;
    for (int jj = 0; jj < kTile; ++jj) {
      const int j = j0 + jj;
      float dot = -INFINITY;
      if (j < s.Tk && visible(s, i, j)) {
        dot = 0.0f;
        for (int d = 0; d < D; ++d) dot += qr[d] * ks[jj][d];
      }
      sc[jj] = dot;
      tile_max = fmaxf(tile_max, dot);
    }
    if (tile_max == -INFINITY) continue;
    const float m_new = fmaxf(m, tile_max);
    const float corr = expf(m - m_new);  // 0 while m is still -inf
    l *= corr;
    for (int d = 0; d < D; ++d) acc[d] *= corr;
    for (int jj = 0; jj < kTile; ++jj) {
      if (sc[jj] == -INFINITY) continue;
      const float p = expf(sc[jj] - m_new);
      l += p;
      for (int d = 0; d < D; ++d) acc[d] += p * vs[jj][d];
    }
    m = m_new;
  }
  if (!active) return;
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  for (int d = 0; d < D; ++d) out[qidx(s, b, i, h) + d] = acc[d] * inv;
  lse[lidx(s, b, h, i)] = l > 0.0f ? m + logf(l) : -INFINITY;
}

// delta[b, h, i] = rowsum(dout * out), the softmax backward's per-row term.
__global__ void attention_delta_kernel(float* delta, const float* dout, const float* out, AttentionShape s) {
  const size_t r = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (r >= size_t(s.B) * s.H * s.Tq) return;
  const int i = r % s.Tq, h = r / s.Tq % s.H, b = r / (size_t(s.Tq) * s.H);
  const size_t at = qidx(s, b, i, h);
  float acc = 0.0f;
  for (int d = 0; d < s.D; ++d) acc += dout[at + d] * out[at + d];
  delta[r] = acc;
}

__global__ void attention_dq_kernel(float* dq, const float* dout, const float* q, const float* k, const float* v,
                                    const float* lse, const float* delta, AttentionShape s, float scale) {
  __shared__ float ks[kTile][kMaxD], vs[kTile][kMaxD];
  const int b = blockIdx.z, h = blockIdx.y, kh = h / (s.H / s.KH);
  const int first = blockIdx.x * kRows, i = first + threadIdx.x;
  const int last = min(first + kRows, s.Tq) - 1;
  const int D = s.D;
  float row_lse = -INFINITY, row_delta = 0.0f;
  if (i < s.Tq) row_lse = lse[lidx(s, b, h, i)], row_delta = delta[lidx(s, b, h, i)];
  const bool active = i < s.Tq && row_lse != -INFINITY;
  float qr[kMaxD], dor[kMaxD], acc[kMaxD];
  for (int d = 0; d < D; ++d) {
    qr[d] = active ? q[qidx(s, b, i, h) + d] * scale : 0.0f;
    dor[d] = active ? dout[qidx(s, b, i, h) + d] : 0.0f;
    acc[d] = 0.0f;
  }
  for (int j0 = 0; j0 < s.Tk; j0 += kTile) {
    if (!visible(s, last, j0)) break;
    __syncthreads();
    stage_rows(ks, k, b, j0, s.Tk, s.KH, kh, D);
    stage_rows(vs, v, b, j0, s.Tk, s.KH, kh, D);
    __syncthreads();
    if (!active) continue;
    for (int jj = 0; jj < kTile && j0 + jj < s.Tk; ++jj) {
      if (!visible(s, i, j0 + jj)) continue;
      float sc = 0.0f, dp = 0.0f;
      for (int d = 0; d < D; ++d) sc += qr[d] * ks[jj][d], dp += dor[d] * vs[jj][d];
      const float ds = expf(sc - row_lse) * (dp - row_delta) * scale;
      for (int d = 0; d < D; ++d) acc[d] += ds * ks[jj][d];
    }
  }
  if (!active) return;
  for (int d = 0; d < D; ++d) dq[qidx(s, b, i, h) + d] += acc[d];
}

// One thread per key row of kv head kh; it visits every query of the H / KH heads that read it,
// so dk and dv need no atomics.
__global__ void attention_dkdv_kernel(float* dk, float* dv, const float* dout, const float* q, const float* k,
                                      const float* v, const float* lse, const float* delta, AttentionShape s,
                                      float scale) {
  __shared__ float qs[kTile][kMaxD], dos[kTile][kMaxD];
  __shared__ float lse_s[kTile], delta_s[kTile];
  const int b = blockIdx.z, kh = blockIdx.y, group = s.H / s.KH;
  const int first = blockIdx.x * kRows, j = first + threadIdx.x;
  const bool active = j < s.Tk;
  const int D = s.D;
  float kr[kMaxD], vr[kMaxD], dka[kMaxD], dva[kMaxD];
  for (int d = 0; d < D; ++d) {
    kr[d] = active ? k[kidx(s, b, j, kh) + d] * scale : 0.0f;
    vr[d] = active ? v[kidx(s, b, j, kh) + d] : 0.0f;
    dka[d] = dva[d] = 0.0f;
  }
  for (int h = kh * group; h < (kh + 1) * group; ++h) {
    for (int i0 = 0; i0 < s.Tq; i0 += kTile) {
      const int i_last = min(i0 + kTile, s.Tq) - 1;
      if (!visible(s, i_last, first)) continue;  // every query of the tile precedes every key of the block
      __syncthreads();
      stage_rows(qs, q, b, i0, s.Tq, s.H, h, D);
      stage_rows(dos, dout, b, i0, s.Tq, s.H, h, D);
      for (int r = threadIdx.x; r < kTile; r += blockDim.x) {
        const bool in = i0 + r < s.Tq;
        lse_s[r] = in ? lse[lidx(s, b, h, i0 + r)] : -INFINITY;
        delta_s[r] = in ? delta[lidx(s, b, h, i0 + r)] : 0.0f;
      }
      __syncthreads();
      if (!active) continue;
      for (int ii = 0; ii < kTile && i0 + ii < s.Tq; ++ii) {
        if (lse_s[ii] == -INFINITY || !visible(s, i0 + ii, j)) continue;
        float sc = 0.0f, dp = 0.0f;
        for (int d = 0; d < D; ++d) sc += qs[ii][d] * kr[d], dp += dos[ii][d] * vr[d];
        const float p = expf(sc - lse_s[ii]);
        const float ds = p * (dp - delta_s[ii]) * scale;
        for (int d = 0; d < D; ++d) {
          dva[d] += p * dos[ii][d];
          dka[d] += ds * qs[ii][d];
        }
      }
    }
  }
  if (!active) return;
  for (int d = 0; d < D; ++d) {
    dk[kidx(s, b, j, kh) + d] += dka[d];
    dv[kidx(s, b, j, kh) + d] += dva[d];
  }
}

__global__ void attention_merge_kernel(float* out, float* lse, const float* out_b, const float* lse_b, int B,
                                       int Tq, int H, int D) {
  const size_t r = blockIdx.x * size_t(blockDim.x) + threadIdx.x;  // indexes lse [B, H, Tq]
  if (r >= size_t(B) * H * Tq) return;
  const float la = lse[r], lb = lse_b[r];
  if (lb == -INFINITY) return;  // a partial result that saw no key changes nothing
  const size_t b = r / (size_t(H) * Tq), h = r / Tq % H, i = r % Tq;
  const size_t at = ((b * Tq + i) * H + h) * D;
  const float lnew = fmaxf(la, lb) + log1pf(expf(-fabsf(la - lb)));
  const float wa = expf(la - lnew), wb = expf(lb - lnew);
  for (int d = 0; d < D; ++d) out[at + d] = out[at + d] * wa + out_b[at + d] * wb;
  lse[r] = lnew;
}

void check_shape(const AttentionShape& s) {
  RW_USER_CHECK(s.D > 0 && s.D <= kMaxD, "CUDA attention supports head dim 1..%d, got %d", kMaxD, s.D);
  RW_CHECK(s.KH > 0 && s.H % s.KH == 0, "query heads %d not a multiple of kv heads %d", s.H, s.KH);
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttentionShape& s) {
  check_shape(s);
  if (s.B == 0 || s.Tq == 0) return;
  const dim3 grid((s.Tq + kRows - 1) / kRows, s.H, s.B);
  attention_forward_kernel<<<grid, kRows>>>(out, lse, q, k, v, s, 1.0f / sqrtf(float(s.D)));
  RW_CUDA_LAUNCH_CHECK();
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const AttentionShape& s) {
  check_shape(s);
  if (s.B == 0 || s.Tq == 0 || s.Tk == 0) return;
  const float scale = 1.0f / sqrtf(float(s.D));
  const size_t rows = size_t(s.B) * s.H * s.Tq;
  float* delta = nullptr;
  RW_CUDA_CHECK(cudaMalloc(&delta, rows * sizeof(float)));
  attention_delta_kernel<<<grid_for(rows, 256), 256>>>(delta, dout, out, s);
  RW_CUDA_LAUNCH_CHECK();
  attention_dq_kernel<<<dim3((s.Tq + kRows - 1) / kRows, s.H, s.B), kRows>>>(dq, dout, q, k, v, lse, delta, s,
                                                                           scale);
  RW_CUDA_LAUNCH_CHECK();
  attention_dkdv_kernel<<<dim3((s.Tk + kRows - 1) / kRows, s.KH, s.B), kRows>>>(dk, dv, dout, q, k, v, lse, delta,
                                                                              s, scale);
  RW_CUDA_LAUNCH_CHECK();
  RW_CUDA_CHECK(cudaFree(delta));  // cudaFree waits for the kernels above
}

void attention_merge(float* out, float* lse, const float* out_b, const float* lse_b, int B, int Tq, int H, int D) {
  const size_t rows = size_t(B) * H * Tq;
  if (rows == 0) return;
  attention_merge_kernel<<<grid_for(rows, 256), 256>>>(out, lse, out_b, lse_b, B, Tq, H, D);
  RW_CUDA_LAUNCH_CHECK();
}

}  // namespace rw::cuda
