// exp() that GCC vectorises: glibc's vector expf is only declared under -ffast-math, and the scalar
// call made the softmax and SwiGLU loops several times slower.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

namespace rw::cpu {

// Cephes' expf, branch-free: x = n ln2 + r with |r| <= ln2/2 (n by the 1.5 * 2^23 round-to-nearest
// trick, since std::floor blocks vectorisation under trapping math; ln2 split in two so r is
// exact), a degree-7 polynomial for exp(r), 2^n written into the exponent bits. Error below
// 1.5 ulp. x < -87, the -inf of a masked score included, gives exactly 0; x is clamped at 88, so
// 2^n stays a normal float. NaN stays NaN.
inline float fast_exp(float x) {
  const float xc = std::min(std::max(x, -87.0f), 88.0f);
  const float n = (xc * 1.44269504f + 12582912.0f) - 12582912.0f;
  const float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float pow2n;
  std::memcpy(&pow2n, &bits, sizeof pow2n);
  return x < -87.0f ? 0.0f : p * pow2n;
}

}  // namespace rw::cpu
