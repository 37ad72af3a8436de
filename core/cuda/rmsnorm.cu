// RMSNorm: one block per row for the forward and the input gradient; the weight gradient runs one
// thread per column over all rows, so it needs no atomics and sums in a fixed order.
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_check.h"
#include "core/cuda/ops.h"

namespace rw::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* inp, const float* weight, int C,
                                       float eps) {
  const float* x = inp + size_t(blockIdx.x) * C;
  float* o = out + size_t(blockIdx.x) * C;
  float ss = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) ss += x[c] * x[c];
  const float r = rsqrtf(block_sum(ss) / C + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = r;
  for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = x[c] * r * weight[c];
}

__global__ void rmsnorm_dinp_kernel(float* dinp, const float* dout, const float* inp, const float* weight,
                                    const float* rstd, int C) {
  const size_t at = size_t(blockIdx.x) * C;
  const float* x = inp + at;
  const float* dy = dout + at;
  const float r = rstd[blockIdx.x];
  float dot = 0.0f;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dot += dy[c] * weight[c] * x[c];
  const float k = block_sum(dot) * r * r * r / C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dinp[at + c] += r * weight[c] * dy[c] - k * x[c];
}

__global__ void rmsnorm_dweight_kernel(float* dweight, const float* dout, const float* inp, const float* rstd,
                                       int N, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float acc = 0.0f;
  for (int n = 0; n < N; ++n) acc += dout[size_t(n) * C + c] * inp[size_t(n) * C + c] * rstd[n];
  dweight[c] += acc;
}

}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps) {
  if (N == 0) return;
  rmsnorm_forward_kernel<<<N, kThreads>>>(out, rstd, inp, weight, C, eps);
  RW_CUDA_LAUNCH_CHECK();
}

void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C) {
  if (N == 0) return;
  rmsnorm_dinp_kernel<<<N, kThreads>>>(dinp, dout, inp, weight, rstd, C);
  RW_CUDA_LAUNCH_CHECK();
  rmsnorm_dweight_kernel<<<grid_for(C, kThreads), kThreads>>>(dweight, dout, inp, rstd, N, C);
  RW_CUDA_LAUNCH_CHECK();
}

}  // namespace rw::cuda
