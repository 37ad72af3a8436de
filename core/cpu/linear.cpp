// Linear layers are OpenBLAS sgemm calls in row-major; the weight keeps the Hugging Face [OC, IC]
// layout, so the forward multiplies by its transpose.
#include <cblas.h>

#include "core/ops.h"

namespace rw::cpu {

void linear_forward(float* out, const float* inp, const float* weight, int N, int IC, int OC) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, weight, IC, 0.0f, out, OC);
}

// beta = 1 makes both products accumulate, per the gradient convention in ops.h.
void linear_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                     int N, int IC, int OC) {
  if (dinp)  // dinp[N, IC] += dout[N, OC] @ weight[OC, IC]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
  // dweight[OC, IC] += dout^T[OC, N] @ inp[N, IC]
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
}

}  // namespace rw::cpu
