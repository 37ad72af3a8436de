#include <cmath>
#include <cstring>
#include <vector>

#include "core/ops.h"

namespace rw::cpu {

// exp() that GCC can vectorise: glibc's vector expf is only declared under -ffast-math, and the
// scalar call made SwiGLU about six times slower. Cephes' expf: x = k ln2 + r with |r| <= ln2/2 (k by
// the 1.5 * 2^23 round-to-nearest trick, ln2 split in two so r is exact), a degree-7 polynomial for
// exp(r), 2^k written into the exponent bits. Error below 1.5 ulp. x is clamped to [-87, 88] so 2^k
// stays a normal float; a sigmoid is saturated long before that. NaN stays NaN.
static inline float exp_vec(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - k * 0.693359375f - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

void swiglu_forward(float* out, const float* gate, const float* up, size_t n) {
#pragma omp parallel for simd
  for (size_t i = 0; i < n; ++i) {
    float g = gate[i];
    out[i] = g / (1.0f + exp_vec(-g)) * up[i];
  }
}

// With s = sigmoid(g): d silu(g) / dg = s + g * s * (1 - s) = s * (1 + g * (1 - s)).
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n) {
#pragma omp parallel for simd
  for (size_t i = 0; i < n; ++i) {
    float g = gate[i];
    float s = 1.0f / (1.0f + exp_vec(-g));
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
