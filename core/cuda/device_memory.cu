// GPU memory behind rw::Tensor. Out-of-memory is reported with the size asked for and what is free.
#include "core/cuda/cuda_check.h"
#include "core/tensor.h"

namespace rw {

void* cuda_alloc(size_t bytes) {
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    throw UserError(format("GPU out of memory: asked for %.1f MiB, %.1f MiB free of %.1f MiB",
                           bytes / 1048576.0, free_b / 1048576.0, total_b / 1048576.0));
  }
  RW_CUDA_CHECK(err);
  return p;
}

void cuda_free(void* ptr) {
  if (ptr) RW_CUDA_CHECK(cudaFree(ptr));
}

void cuda_memset_zero(void* ptr, size_t bytes) { RW_CUDA_CHECK(cudaMemset(ptr, 0, bytes)); }

void cuda_copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  cudaMemcpyKind kind = dst_device == Device::CUDA
                            ? (src_device == Device::CUDA ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                            : cudaMemcpyDeviceToHost;
  RW_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

}  // namespace rw
