// Fused softmax cross-entropy: the probabilities are never stored; the backward recomputes them
// from the logits and the saved log-sum-exp.
#include <cmath>

#include "core/check.h"
#include "core/cpu/fast_exp.h"
#include "core/ops.h"

namespace rw::cpu {

// Subtracting the row max keeps every exp() in (0, 1], so logits of any size stay finite.
void cross_entropy_forward(float* loss, float* lse, const float* logits, const int32_t* targets, int N, int V) {
#pragma omp parallel for
  for (int n = 0; n < N; ++n) {
    const float* x = logits + static_cast<size_t>(n) * V;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int i = 0; i < V; ++i) mx = std::fmax(mx, x[i]);
    float sum = 0.0f;  // the vector width fixes the summation order, not the thread count
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < V; ++i) sum += fast_exp(x[i] - mx);
    float l = mx + std::log(sum);
    lse[n] = l;
    RW_DCHECK(targets[n] < V);
    loss[n] = targets[n] < 0 ? 0.0f : l - x[targets[n]];
  }
}

// softmax_i = exp(x_i - lse); the one-hot term is subtracted at the target only.
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse, const int32_t* targets,
                            float dloss, int N, int V) {
#pragma omp parallel for
  for (int n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    const float* x = logits + static_cast<size_t>(n) * V;
    float* dx = dlogits + static_cast<size_t>(n) * V;
    float l = lse[n];
    for (int i = 0; i < V; ++i) dx[i] += dloss * fast_exp(x[i] - l);
    dx[targets[n]] -= dloss;
  }
}

}  // namespace rw::cpu
