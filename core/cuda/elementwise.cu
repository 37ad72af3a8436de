// SwiGLU, residual add, AdamW and the gradient-norm reduction: one thread per element, grid-stride.
#include <cmath>
#include <vector>

#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_check.h"
#include "core/cuda/ops.h"

namespace rw::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void swiglu_forward_kernel(float* out, const float* gate, const float* up, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

__global__ void swiglu_backward_kernel(float* dgate, float* dup, const float* dout, const float* gate,
                                       const float* up, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    float g = gate[i];
    float s = 1.0f / (1.0f + expf(-g));
    dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
    dup[i] += dout[i] * g * s;
  }
}

__global__ void add_kernel(float* out, const float* a, const float* b, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    out[i] = a[i] + b[i];
}

__global__ void adamw_kernel(float* param, const float* grad, float* m, float* v, size_t n, AdamWParams p,
                             float grad_scale, float bc1, float bc2) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    float g = grad[i] * grad_scale;
    float mi = p.beta1 * m[i] + (1.0f - p.beta1) * g;
    float vi = p.beta2 * v[i] + (1.0f - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] -= p.lr * ((mi / bc1) / (sqrtf(vi / bc2) + p.eps) + p.weight_decay * param[i]);
  }
}

// Pass one: block k sums its fixed chunk; pass two: one block sums the partials in order.
__global__ void sum_squares_partial_kernel(double* partial, const float* x, size_t n, size_t chunk) {
  const size_t begin = blockIdx.x * chunk, end = begin + chunk < n ? begin + chunk : n;
  double acc = 0.0;
  for (size_t i = begin + threadIdx.x; i < end; i += blockDim.x) acc += double(x[i]) * x[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void sum_partials_kernel(double* total, const double* partial, int n) {
  double acc = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) acc += partial[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *total = acc;
}

// Grid-stride kernels need no more blocks than keep the GPU busy.
unsigned elementwise_grid(size_t n) {
  unsigned g = grid_for(n, kThreads);
  return g < 65535u ? (g ? g : 1u) : 65535u;
}

}  // namespace

void swiglu_forward(float* out, const float* gate, const float* up, size_t n) {
  swiglu_forward_kernel<<<elementwise_grid(n), kThreads>>>(out, gate, up, n);
  RW_CUDA_LAUNCH_CHECK();
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n) {
  swiglu_backward_kernel<<<elementwise_grid(n), kThreads>>>(dgate, dup, dout, gate, up, n);
  RW_CUDA_LAUNCH_CHECK();
}

void add_forward(float* out, const float* a, const float* b, size_t n) {
  add_kernel<<<elementwise_grid(n), kThreads>>>(out, a, b, n);
  RW_CUDA_LAUNCH_CHECK();
}

void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, const AdamWParams& p,
                  float grad_scale, int step) {
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(p.beta1), step));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(p.beta2), step));
  adamw_kernel<<<elementwise_grid(n), kThreads>>>(param, grad, m, v, n, p, grad_scale, bc1, bc2);
  RW_CUDA_LAUNCH_CHECK();
}

double sum_squares(const float* x, size_t n) {
  const size_t chunk = 1 << 16;
  const int nblocks = static_cast<int>((n + chunk - 1) / chunk);
  if (nblocks == 0) return 0.0;
  double* buf = nullptr;
  RW_CUDA_CHECK(cudaMalloc(&buf, (nblocks + 1) * sizeof(double)));
  sum_squares_partial_kernel<<<nblocks, kThreads>>>(buf + 1, x, n, chunk);
  RW_CUDA_LAUNCH_CHECK();
  sum_partials_kernel<<<1, kThreads>>>(buf, buf + 1, nblocks);
  RW_CUDA_LAUNCH_CHECK();
  double total = 0.0;
  RW_CUDA_CHECK(cudaMemcpy(&total, buf, sizeof(double), cudaMemcpyDeviceToHost));
  RW_CUDA_CHECK(cudaFree(buf));
  return total;
}

}  // namespace rw::cuda
