// Linear layers through cuBLAS. Row-major out[N, OC] = inp[N, IC] @ W[OC, IC]^T is, in cuBLAS's
// column-major terms, out^T[OC, N] = W^T' [OC, IC] @ inp^T [IC, N], with W read transposed.
#include "core/cuda/cuda_check.h"
#include "core/cuda/ops.h"

namespace rw::cuda {

namespace {

// One handle for the process, made on first use on the current device; it lives until exit.
cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t made = nullptr;
    RW_CUBLAS_CHECK(cublasCreate(&made));
    // Full fp32: the CPU twin comparison needs it; TF32 belongs to a deliberate precision choice.
    RW_CUBLAS_CHECK(cublasSetMathMode(made, CUBLAS_PEDANTIC_MATH));
    return made;
  }();
  return h;
}

}  // namespace

void linear_forward(float* out, const float* inp, const float* weight, int N, int IC, int OC) {
  const float one = 1.0f, zero = 0.0f;
  RW_CUBLAS_CHECK(cublasSgemm(handle(), CUBLAS_OP_T, CUBLAS_OP_N, OC, N, IC, &one, weight, IC, inp, IC, &zero, out,
                              OC));
}

void linear_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                     int N, int IC, int OC) {
  const float one = 1.0f;
  // dinp[N, IC] += dout[N, OC] @ W[OC, IC]
  if (dinp)
    RW_CUBLAS_CHECK(cublasSgemm(handle(), CUBLAS_OP_N, CUBLAS_OP_N, IC, N, OC, &one, weight, IC, dout, OC, &one,
                                dinp, IC));
  // dW[OC, IC] += dout^T[OC, N] @ inp[N, IC]
  RW_CUBLAS_CHECK(cublasSgemm(handle(), CUBLAS_OP_N, CUBLAS_OP_T, IC, OC, N, &one, inp, IC, dout, OC, &one, dweight,
                              IC));
}

void linear_forward_bf16(bf16* out, const bf16* inp, const bf16* weight, int N, int IC, int OC) {
  static_assert(sizeof(bf16) == 2, "rw::bf16 must be the raw 16-bit pattern cuBLAS reads");
  const float one = 1.0f, zero = 0.0f;
  RW_CUBLAS_CHECK(cublasGemmEx(handle(), CUBLAS_OP_T, CUBLAS_OP_N, OC, N, IC, &one, weight, CUDA_R_16BF, IC, inp,
                               CUDA_R_16BF, IC, &zero, out, CUDA_R_16BF, OC, CUBLAS_COMPUTE_32F,
                               CUBLAS_GEMM_DEFAULT));
}

}  // namespace rw::cuda
