#include <cmath>
#include <vector>

#include "core/cpu/fast_exp.h"
#include "core/ops.h"

namespace rw::cpu {

void swiglu_forward(float* out, const float* gate, const float* up, size_t n) {
#pragma omp parallel for simd
  for (size_t i = 0; i < n; ++i) {
    float g = gate[i];
    out[i] = g / (1.0f + fast_exp(-g)) * up[i];
  }
}

// With s = sigmoid(g): d silu(g) / dg = s + g * s * (1 - s) = s * (1 + g * (1 - s)).
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n) {
#pragma omp parallel for simd
  for (size_t i = 0; i < n; ++i) {
    float g = gate[i];
    float s = 1.0f / (1.0f + fast_exp(-g));
    dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
    dup[i] += dout[i] * g * s;
  }
}

// `omp simd` vouches that out == a is safe (each lane reads a[i] before writing out[i]).
void add_forward(float* out, const float* a, const float* b, size_t n) {
#pragma omp parallel for simd
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

// Fixed 4096-element chunks, each summed on its own and then added in chunk order, so the result
// depends only on n, never on how many threads shared the chunks.
double sum_squares(const float* x, size_t n) {
  const size_t chunk = 4096;
  const size_t nchunks = (n + chunk - 1) / chunk;
  std::vector<double> partial(nchunks);
#pragma omp parallel for
  for (size_t k = 0; k < nchunks; ++k) {
    size_t end = (k + 1) * chunk < n ? (k + 1) * chunk : n;
    double acc = 0.0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = k * chunk; i < end; ++i) acc += static_cast<double>(x[i]) * x[i];
    partial[k] = acc;
  }
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace rw::cpu
