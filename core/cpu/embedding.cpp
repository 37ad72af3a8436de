#include <cstring>

#include "core/ops.h"

namespace rw::cpu {

void embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int C) {
#pragma omp parallel for
  for (int n = 0; n < N; ++n)
    std::memcpy(out + static_cast<size_t>(n) * C, wte + static_cast<size_t>(tokens[n]) * C, C * sizeof(float));
}

// Repeated tokens hit the same dwte row, so threads split the columns instead of the tokens: each
// thread owns a column slice and walks all tokens in order, which keeps every sum race-free and in
// the same order for any thread count. 64 floats = 4 cache lines, so slices never share a line.
void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int C) {
  const int chunk = 64;
#pragma omp parallel for schedule(static)
  for (int c0 = 0; c0 < C; c0 += chunk) {
    int c1 = c0 + chunk < C ? c0 + chunk : C;
    for (int n = 0; n < N; ++n) {
      float* dw = dwte + static_cast<size_t>(tokens[n]) * C;
      const float* d = dout + static_cast<size_t>(n) * C;
      for (int c = c0; c < c1; ++c) dw[c] += d[c];
    }
  }
}

}  // namespace rw::cpu
