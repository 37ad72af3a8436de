// RoPE (rotate-half): one thread per (row, i < D/2) pair; the table in double like the CPU's.
#include <cmath>

#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_check.h"
#include "core/cuda/ops.h"

namespace rw::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void rope_table_kernel(float* cos_t, float* sin_t, int max_pos, int D, float theta) {
  const int half = D / 2;
  const size_t at = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (at >= size_t(max_pos) * half) return;
  const int p = at / half, i = at % half;
  const double angle = p * pow(double(theta), -2.0 * i / D);
  cos_t[at] = float(::cos(angle));
  sin_t[at] = float(::sin(angle));
}

template <bool kBackward>
__global__ void rope_kernel(float* out, const float* inp, const float* cos_t, const float* sin_t,
                            const int32_t* pos, int N, int nh, int D) {
  const int half = D / 2;
  const size_t at = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (at >= size_t(N) * nh * half) return;
  const size_t row = at / half;
  const int i = at % half;
  const size_t t = size_t(pos[row / nh]) * half + i;
  const float c = cos_t[t], s = sin_t[t];
  const float x1 = inp[row * D + i], x2 = inp[row * D + i + half];
  if (kBackward) {  // the transpose of the rotation, accumulated
    out[row * D + i] += x1 * c + x2 * s;
    out[row * D + i + half] += x2 * c - x1 * s;
  } else {
    out[row * D + i] = x1 * c - x2 * s;
    out[row * D + i + half] = x2 * c + x1 * s;
  }
}

}  // namespace

void rope_table(float* cos, float* sin, int max_pos, int D, float theta) {
  const size_t n = size_t(max_pos) * (D / 2);
  if (n == 0) return;
  rope_table_kernel<<<grid_for(n, kThreads), kThreads>>>(cos, sin, max_pos, D, theta);
  RW_CUDA_LAUNCH_CHECK();
}

void rope_forward(float* out, const float* inp, const float* cos, const float* sin, const int32_t* pos, int N,
                  int nh, int D) {
  const size_t n = size_t(N) * nh * (D / 2);
  if (n == 0) return;
  rope_kernel<false><<<grid_for(n, kThreads), kThreads>>>(out, inp, cos, sin, pos, N, nh, D);
  RW_CUDA_LAUNCH_CHECK();
}

void rope_backward(float* dinp, const float* dout, const float* cos, const float* sin, const int32_t* pos, int N,
                   int nh, int D) {
  const size_t n = size_t(N) * nh * (D / 2);
  if (n == 0) return;
  rope_kernel<true><<<grid_for(n, kThreads), kThreads>>>(dinp, dout, cos, sin, pos, N, nh, D);
  RW_CUDA_LAUNCH_CHECK();
}

}  // namespace rw::cuda
