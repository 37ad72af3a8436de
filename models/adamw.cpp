#include "models/adamw.h"

#include <algorithm>
#include <cmath>

namespace rw {

AdamW::AdamW(const ParamTable& table, const cpu::AdamWParams& hyper)
    : table_(table),
      hyper_(hyper),
      m_(Tensor::zeros({static_cast<int64_t>(table.total())})),
      v_(Tensor::zeros({static_cast<int64_t>(table.total())})) {}

void AdamW::step(float* params, const float* grads, float lr, float grad_scale) {
  ++t_;
  for (const ParamInfo& p : table_.entries()) {
    cpu::AdamWParams h = hyper_;
    h.lr = lr;
    if (!p.decay) h.weight_decay = 0.0f;
    cpu::adamw_update(params + p.offset, grads + p.offset, m_.data<float>() + p.offset, v_.data<float>() + p.offset,
                      p.numel(), h, grad_scale, t_);
  }
}

float lr_at_step(int step, int total_steps, int warmup_steps, float peak_lr, float min_lr) {
  if (step <= warmup_steps) return peak_lr * step / std::max(1, warmup_steps);
  int decay_steps = std::max(1, total_steps - warmup_steps);
  double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / decay_steps);
  return static_cast<float>(min_lr + 0.5 * (peak_lr - min_lr) * (1.0 + std::cos(M_PI * progress)));
}

float global_grad_norm(const float* grads, size_t n) {
  return static_cast<float>(std::sqrt(cpu::sum_squares(grads, n)));
}

}  // namespace rw
