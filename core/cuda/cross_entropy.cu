// Fused softmax cross-entropy: one block per row, max and sum-of-exp as block reductions in fp32.
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_check.h"
#include "core/cuda/ops.h"

namespace rw::cuda {

namespace {

constexpr int kThreads = 512;

__global__ void cross_entropy_forward_kernel(float* loss, float* lse, const float* logits, const int32_t* targets,
                                             int V) {
  const float* x = logits + size_t(blockIdx.x) * V;
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, x[i]);
  mx = block_max(mx);
  float sum = 0.0f;
  for (int i = threadIdx.x; i < V; i += blockDim.x) sum += expf(x[i] - mx);
  const float l = mx + logf(block_sum(sum));
  if (threadIdx.x == 0) {
    const int t = targets[blockIdx.x];
    lse[blockIdx.x] = l;
    loss[blockIdx.x] = t < 0 ? 0.0f : l - x[t];
  }
}

__global__ void cross_entropy_backward_kernel(float* dlogits, const float* logits, const float* lse,
                                              const int32_t* targets, float dloss, int V) {
  const int t = targets[blockIdx.x];
  if (t < 0) return;
  const size_t at = size_t(blockIdx.x) * V;
  const float l = lse[blockIdx.x];
  for (int i = threadIdx.x; i < V; i += blockDim.x)
    dlogits[at + i] += dloss * (expf(logits[at + i] - l) - (i == t ? 1.0f : 0.0f));
}

}  // namespace

void cross_entropy_forward(float* loss, float* lse, const float* logits, const int32_t* targets, int N, int V) {
  if (N == 0) return;
  cross_entropy_forward_kernel<<<N, kThreads>>>(loss, lse, logits, targets, V);
  RW_CUDA_LAUNCH_CHECK();
}

void cross_entropy_backward(float* dlogits, const float* logits, const float* lse, const int32_t* targets,
                            float dloss, int N, int V) {
  if (N == 0) return;
  cross_entropy_backward_kernel<<<N, kThreads>>>(dlogits, logits, lse, targets, dloss, V);
  RW_CUDA_LAUNCH_CHECK();
}

}  // namespace rw::cuda
