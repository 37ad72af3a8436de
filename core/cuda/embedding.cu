// Token embedding: one block per token row. The backward scatters with atomicAdd, so rows that
// share a token accumulate in arrival order (last-bit differences from the CPU are expected).
#include "core/cuda/block_reduce.cuh"
#include "core/cuda/cuda_check.h"
#include "core/cuda/ops.h"

namespace rw::cuda {

namespace {

__global__ void embedding_forward_kernel(float* out, const int32_t* tokens, const float* wte, int C) {
  const size_t n = blockIdx.x;
  const float* row = wte + size_t(tokens[n]) * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) out[n * C + c] = row[c];
}

__global__ void embedding_backward_kernel(float* dwte, const float* dout, const int32_t* tokens, int C) {
  const size_t n = blockIdx.x;
  float* row = dwte + size_t(tokens[n]) * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) atomicAdd(row + c, dout[n * C + c]);
}

}  // namespace

void embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int C) {
  if (N == 0) return;
  embedding_forward_kernel<<<N, 256>>>(out, tokens, wte, C);
  RW_CUDA_LAUNCH_CHECK();
}

void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int C) {
  if (N == 0) return;
  embedding_backward_kernel<<<N, 256>>>(dwte, dout, tokens, C);
  RW_CUDA_LAUNCH_CHECK();
}

}  // namespace rw::cuda
