// Block-wide sum and max for kernels with one block per row. Every thread gets the result; the
// order of the reduction is fixed by the block size, so results repeat bit for bit.
#pragma once
#include <cuda_runtime.h>

namespace rw::cuda {

template <typename T>
__device__ inline T warp_sum(T x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

__device__ inline float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

// blockDim.x must be a multiple of 32, at most 1024. Contains __syncthreads: call from all threads.
template <typename T, typename Op>
__device__ inline T block_reduce(T x, Op warp_op, T identity) {
  __shared__ T partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  x = warp_op(x);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = x;
  __syncthreads();
  x = lane < nwarps ? partial[lane] : identity;
  return warp_op(x);
}

__device__ inline float block_sum(float x) { return block_reduce(x, warp_sum<float>, 0.0f); }
__device__ inline double block_sum(double x) { return block_reduce(x, warp_sum<double>, 0.0); }
__device__ inline float block_max(float x) { return block_reduce(x, warp_max, -INFINITY); }

inline unsigned grid_for(size_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace rw::cuda
