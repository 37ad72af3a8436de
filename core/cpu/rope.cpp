// Rotary embeddings, Hugging Face rotate-half convention: within each head, element i pairs with
// element i + D/2 (not with its neighbour), rotated by the angle pos * theta^(-2i/D).
#include <cmath>

#include "core/ops.h"

namespace rw::cpu {

// Angles are formed in double: pos * inv_freq reaches thousands of radians, where a float angle
// would already have lost several bits before cos/sin see it.
void rope_table(float* cos, float* sin, int max_pos, int D, float theta) {
  const int half = D / 2;
#pragma omp parallel for
  for (int p = 0; p < max_pos; ++p) {
    for (int i = 0; i < half; ++i) {
      double inv_freq = std::pow(static_cast<double>(theta), -2.0 * i / D);
      double angle = p * inv_freq;
      cos[static_cast<size_t>(p) * half + i] = static_cast<float>(std::cos(angle));
      sin[static_cast<size_t>(p) * half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

namespace {

// Calls fn(row, cos, sin) for each (token, head) row of D values, with the table rows of the
// token's position.
template <class Fn>
void for_each_row(const float* cos, const float* sin, const int32_t* pos, int N, int nh, int D, Fn fn) {
  const int half = D / 2;
  const long rows = static_cast<long>(N) * nh;
#pragma omp parallel for
  for (long row = 0; row < rows; ++row) {
    const size_t p = static_cast<size_t>(pos[row / nh]) * half;
    fn(row * D, cos + p, sin + p);
  }
}

}  // namespace

// out may be inp: each lane reads its two elements before writing them, which `omp simd` allows.
void rope_forward(float* out, const float* inp, const float* cos, const float* sin, const int32_t* pos, int N,
                  int nh, int D) {
  const int half = D / 2;
  for_each_row(cos, sin, pos, N, nh, D, [&](long at, const float* c, const float* s) {
    const float* x = inp + at;
    float* y = out + at;
#pragma omp simd
    for (int i = 0; i < half; ++i) {
      float x1 = x[i], x2 = x[i + half];
      y[i] = x1 * c[i] - x2 * s[i];
      y[i + half] = x2 * c[i] + x1 * s[i];
    }
  });
}

// The transpose (inverse) rotation, accumulated into dinp.
void rope_backward(float* dinp, const float* dout, const float* cos, const float* sin, const int32_t* pos, int N,
                   int nh, int D) {
  const int half = D / 2;
  for_each_row(cos, sin, pos, N, nh, D, [&](long at, const float* c, const float* s) {
    const float* dy = dout + at;
    float* dx = dinp + at;
    for (int i = 0; i < half; ++i) {
      float dy1 = dy[i], dy2 = dy[i + half];
      dx[i] += dy1 * c[i] + dy2 * s[i];
      dx[i + half] += dy2 * c[i] - dy1 * s[i];
    }
  });
}

}  // namespace rw::cpu
