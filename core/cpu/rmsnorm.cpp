#include <cmath>

#include "core/ops.h"

namespace rw::cpu {

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps) {
#pragma omp parallel for
  for (int n = 0; n < N; ++n) {
    const float* x = inp + static_cast<size_t>(n) * C;
    float* o = out + static_cast<size_t>(n) * C;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < C; ++c) ss += x[c] * x[c];
    float r = 1.0f / std::sqrt(ss / C + eps);
    rstd[n] = r;
    for (int c = 0; c < C; ++c) o[c] = x[c] * r * weight[c];
  }
}

// With y = x * r * w and r = (mean(x^2) + eps)^(-1/2):
//   dx_j = r * w_j * dy_j - x_j * r^3 / C * sum_k dy_k * w_k * x_k
//   dw_j = sum_n dy_nj * x_nj * r_n
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C) {
#pragma omp parallel for
  for (int n = 0; n < N; ++n) {
    const float* x = inp + static_cast<size_t>(n) * C;
    const float* dy = dout + static_cast<size_t>(n) * C;
    float* dx = dinp + static_cast<size_t>(n) * C;
    float r = rstd[n];
    float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
    for (int c = 0; c < C; ++c) dot += dy[c] * weight[c] * x[c];
    float k = dot * r * r * r / C;
    for (int c = 0; c < C; ++c) dx[c] += r * weight[c] * dy[c] - k * x[c];
  }
  // dweight sums over rows, so threads split the columns (64 floats = 4 cache lines each) and
  // every column adds its rows in order: the same bits for any thread count.
  const int chunk = 64;
#pragma omp parallel for schedule(static)
  for (int c0 = 0; c0 < C; c0 += chunk) {
    int c1 = c0 + chunk < C ? c0 + chunk : C;
    for (int n = 0; n < N; ++n) {
      const float* x = inp + static_cast<size_t>(n) * C;
      const float* dy = dout + static_cast<size_t>(n) * C;
      float r = rstd[n];
      for (int c = c0; c < c1; ++c) dweight[c] += dy[c] * x[c] * r;
    }
  }
}

}  // namespace rw::cpu
