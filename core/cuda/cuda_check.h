// Checked CUDA runtime and cuBLAS calls: the call's text, file:line and the error string.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/check.h"

#define RW_CUDA_CHECK(call)                                                                 \
  do {                                                                                      \
    cudaError_t rw_err_ = (call);                                                           \
    if (rw_err_ != cudaSuccess)                                                             \
      ::rw::fatal(__FILE__, __LINE__, ::rw::format("%s failed: %s", #call, cudaGetErrorString(rw_err_))); \
  } while (0)

// After every kernel launch: launch-configuration errors surface here, not at the next sync.
#define RW_CUDA_LAUNCH_CHECK() RW_CUDA_CHECK(cudaGetLastError())

#define RW_CUBLAS_CHECK(call)                                                               \
  do {                                                                                      \
    cublasStatus_t rw_st_ = (call);                                                         \
    if (rw_st_ != CUBLAS_STATUS_SUCCESS)                                                    \
      ::rw::fatal(__FILE__, __LINE__, ::rw::format("%s failed: %s", #call, cublasGetStatusString(rw_st_))); \
  } while (0)
