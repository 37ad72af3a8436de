// The CUDA twins of the CPU kernels in core/ops.h: same names, same signatures, same semantics
// (backwards accumulate, targets < 0 ignored, rows that see no key get out = 0 and lse = -inf).
// Every pointer is device memory; kernels run on the legacy default stream in launch order, so a
// caller needs no synchronisation between ops, only before reading results on the host.
//
// Differences from the CPU twins: sums run in a different (but fixed) order, so results agree to
// rounding, not bit for bit; the embedding backward alone uses atomics, so rows sharing a token
// add up in arrival order. The attention kernels are a plain shared-memory tiling on CUDA cores
// (one thread per query or key row, head dim up to 128), far from tensor-core speed. Scratch
// memory (attention backward, sum_squares) comes from cudaMalloc per call until a pool exists.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "core/ops.h"

namespace rw::cuda {

using cpu::AdamWParams;
using cpu::AttentionShape;

// The largest head dim the attention kernels take (a UserError beyond it).
constexpr int kMaxAttentionHeadDim = 128;

void embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int C);
void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int C);

void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C);

// cuBLAS sgemm in full fp32 (no TF32), so results track the CPU's OpenBLAS closely.
void linear_forward(float* out, const float* inp, const float* weight, int N, int IC, int OC);
void linear_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                     int N, int IC, int OC);
// bf16 operands and output, fp32 accumulation (cublasGemmEx): the GPU's training precision.
void linear_forward_bf16(bf16* out, const bf16* inp, const bf16* weight, int N, int IC, int OC);

void rope_table(float* cos, float* sin, int max_pos, int D, float theta);
void rope_forward(float* out, const float* inp, const float* cos, const float* sin, const int32_t* pos, int N,
                  int nh, int D);
void rope_backward(float* dinp, const float* dout, const float* cos, const float* sin, const int32_t* pos, int N,
                   int nh, int D);

void swiglu_forward(float* out, const float* gate, const float* up, size_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n);

void add_forward(float* out, const float* a, const float* b, size_t n);

void cross_entropy_forward(float* loss, float* lse, const float* logits, const int32_t* targets, int N, int V);
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse, const int32_t* targets,
                            float dloss, int N, int V);

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttentionShape& s);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const AttentionShape& s);
void attention_merge(float* out, float* lse, const float* out_b, const float* lse_b, int B, int Tq, int H, int D);

void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, const AdamWParams& p,
                  float grad_scale, int step);

// Fixed-order (two-pass) reduction in double; returns to the host, so it synchronises.
double sum_squares(const float* x, size_t n);

}  // namespace rw::cuda
