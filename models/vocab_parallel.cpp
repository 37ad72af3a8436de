#include "models/vocab_parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/ops.h"

namespace rw {

static bool owns(int32_t id, int v0, int Vl) { return id >= v0 && id < v0 + Vl; }

void vocab_parallel_embedding_forward(float* out, const int32_t* tokens, const float* wte_local, int N, int C, int v0,
                                      int Vl, Communicator& tp) {
  const size_t row = static_cast<size_t>(C);
#pragma omp parallel for
  for (int n = 0; n < N; ++n) {
    float* o = out + n * row;
    if (owns(tokens[n], v0, Vl))
      std::memcpy(o, wte_local + (tokens[n] - v0) * row, row * sizeof(float));
    else
      std::fill(o, o + row, 0.0f);
  }
  tp.allreduce(out, N * row);
}

void vocab_parallel_embedding_backward(float* dwte_local, const float* dout, const int32_t* tokens, int N, int C,
                                       int v0, int Vl) {
  // Tokens are walked in order, so the sums keep the order of cpu::embedding_backward.
  for (int n = 0; n < N; ++n) {
    if (!owns(tokens[n], v0, Vl)) continue;
    float* dw = dwte_local + static_cast<size_t>(tokens[n] - v0) * C;
    const float* d = dout + static_cast<size_t>(n) * C;
    for (int c = 0; c < C; ++c) dw[c] += d[c];
  }
}

void vocab_parallel_cross_entropy_forward(float* loss, float* lse, const float* logits_local, const int32_t* targets,
                                          int N, int v0, int Vl, Communicator& tp) {
  // Row maxima, then the sums of exp against the global maximum and the target logits (zero on
  // the ranks that do not hold the target), reduced together in one call.
  std::vector<float> mx(N), sums(2 * static_cast<size_t>(N));
#pragma omp parallel for
  for (int n = 0; n < N; ++n) {
    const float* x = logits_local + static_cast<size_t>(n) * Vl;
    mx[n] = *std::max_element(x, x + Vl);
  }
  tp.allreduce(mx.data(), N, ReduceOp::Max);
#pragma omp parallel for
  for (int n = 0; n < N; ++n) {
    const float* x = logits_local + static_cast<size_t>(n) * Vl;
    double s = 0;
    for (int i = 0; i < Vl; ++i) s += std::exp(static_cast<double>(x[i]) - mx[n]);
    sums[n] = static_cast<float>(s);
    sums[N + n] = owns(targets[n], v0, Vl) ? x[targets[n] - v0] : 0.0f;
  }
  tp.allreduce(sums.data(), sums.size());
  for (int n = 0; n < N; ++n) {
    lse[n] = mx[n] + std::log(sums[n]);
    loss[n] = targets[n] < 0 ? 0.0f : lse[n] - sums[N + n];
  }
}

void vocab_parallel_cross_entropy_backward(float* dlogits_local, const float* logits_local, const float* lse,
                                           const int32_t* targets, float dloss, int N, int v0, int Vl) {
#pragma omp parallel for
  for (int n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    const float* x = logits_local + static_cast<size_t>(n) * Vl;
    float* dx = dlogits_local + static_cast<size_t>(n) * Vl;
    for (int i = 0; i < Vl; ++i) dx[i] += dloss * std::exp(x[i] - lse[n]);
    if (owns(targets[n], v0, Vl)) dx[targets[n] - v0] -= dloss;
  }
}

}  // namespace rw
