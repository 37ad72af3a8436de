#include <cmath>

#include "core/ops.h"

namespace rw::cpu {

// Decoupled weight decay (Loshchilov & Hutter): the decay term is added to the Adam step, not to
// the gradient, so it is not rescaled by the second moment. It applies to every element passed in;
// callers exempt tensors (norms, biases) by passing weight_decay = 0.
void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, const AdamWParams& p,
                  float grad_scale, int step) {
  // Bias corrections in double: 1 - beta^step cancels badly in float when beta is close to 1.
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(p.beta1), step));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(p.beta2), step));
#pragma omp parallel for simd
  for (size_t i = 0; i < n; ++i) {
    float g = grad[i] * grad_scale;
    float mi = p.beta1 * m[i] + (1.0f - p.beta1) * g;
    float vi = p.beta2 * v[i] + (1.0f - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    float mhat = mi / bc1;
    float vhat = vi / bc2;
    param[i] -= p.lr * (mhat / (std::sqrt(vhat) + p.eps) + p.weight_decay * param[i]);
  }
}

}  // namespace rw::cpu
