// Linear layers are OpenBLAS sgemm calls in row-major; the weight keeps the Hugging Face [OC, IC]
// layout, so the forward multiplies by its transpose.
//
// OpenBLAS runs single-threaded and each product is split over output rows across the OpenMP
// threads here. One thread pool instead of two: OpenBLAS's own threads and
// the OpenMP threads of the other kernels would otherwise spin against each other for the same
// cores. The split never cuts the reduction dimension, so the bits do not depend on thread count.
#include <cblas.h>
#include <omp.h>

#include <algorithm>

#include "core/ops.h"

namespace rw::cpu {
namespace {

// Calls fn(begin, count) for this thread's share of `rows`, in slices that are multiples of 16
// rows (whole sgemm micro-tiles) when there are enough rows.
template <class Fn>
void split_rows(int rows, Fn fn) {
  static const bool blas_single_threaded = (openblas_set_num_threads(1), true);
  (void)blas_single_threaded;
#pragma omp parallel
  {
    const int nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int unit = rows >= 16 * nt ? 16 : 1;
    const int units = (rows + unit - 1) / unit;
    const int begin = std::min(rows, units * t / nt * unit);
    const int end = std::min(rows, units * (t + 1) / nt * unit);
    if (end > begin) fn(begin, end - begin);
  }
}

}  // namespace

void linear_forward(float* out, const float* inp, const float* weight, int N, int IC, int OC) {
  split_rows(N, [&](int n0, int n) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, OC, IC, 1.0f, inp + static_cast<size_t>(n0) * IC, IC,
                weight, IC, 0.0f, out + static_cast<size_t>(n0) * OC, OC);
  });
}

// beta = 1 makes both products accumulate, per the gradient convention in ops.h.
void linear_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                     int N, int IC, int OC) {
  if (dinp)  // dinp[N, IC] += dout[N, OC] @ weight[OC, IC]
    split_rows(N, [&](int n0, int n) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, IC, OC, 1.0f, dout + static_cast<size_t>(n0) * OC,
                  OC, weight, IC, 1.0f, dinp + static_cast<size_t>(n0) * IC, IC);
    });
  // dweight[OC, IC] += dout^T[OC, N] @ inp[N, IC], split over OC so each thread sums all N tokens.
  split_rows(OC, [&](int o0, int o) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, o, IC, N, 1.0f, dout + o0, OC, inp, IC, 1.0f,
                dweight + static_cast<size_t>(o0) * IC, IC);
  });
}

}  // namespace rw::cpu
