// AdamW over a ParamTable: fp32 moments in flat buffers laid out like the parameters, weight
// decay only where the table says so (matrices, not norm weights).
#pragma once
#include "core/ops.h"
#include "core/tensor.h"
#include "models/param_table.h"

namespace rw {

class AdamW {
 public:
  AdamW(const ParamTable& table, const cpu::AdamWParams& hyper);
  // One update of every parameter with grads * grad_scale at learning rate lr.
  void step(float* params, const float* grads, float lr, float grad_scale);
  int steps_taken() const { return t_; }
  void set_steps_taken(int t) { t_ = t; }  // when resuming: the bias correction continues from t
  Tensor& exp_avg() { return m_; }
  Tensor& exp_avg_sq() { return v_; }

 private:
  const ParamTable& table_;
  cpu::AdamWParams hyper_;
  Tensor m_, v_;
  int t_ = 0;
};

// Linear warmup to peak_lr over warmup steps, then cosine decay to min_lr at total_steps.
// step counts from 1.
float lr_at_step(int step, int total_steps, int warmup_steps, float peak_lr, float min_lr);

// Global L2 norm of a gradient buffer, computed in a fixed order.
float global_grad_norm(const float* grads, size_t n);

}  // namespace rw
