// The CPU kernels, forward and backward. Each op keeps the same signature for its CUDA twin.
//
// Dimension letters used in every shape comment:
//   N tokens (B*T flattened)   B batch   T sequence   C model width (d_model)
//   H query heads   KH key/value heads   D head dim   F ffn width   V vocab
//
// Gradient convention (written once, here): every backward ACCUMULATES (+=) into the gradients it
// writes, parameter and activation gradients alike, so gradient accumulation and residual branches
// need no extra code; callers zero gradient buffers when a new backward pass starts.
//
// Reductions run in a fixed order that depends only on the shapes, never on the thread count or
// scheduling, so the same inputs give the same bits.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rw::cpu {

// ---- embedding: out[n, :] = wte[tokens[n], :]
void embedding_forward(float* out, const int32_t* tokens, const float* wte, int N, int C);
void embedding_backward(float* dwte, const float* dout, const int32_t* tokens, int N, int C);

// ---- RMSNorm: out = inp * rstd * weight, rstd = 1/sqrt(mean(inp^2) + eps); rstd saved per row.
void rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int N, int C, float eps);
void rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                      const float* rstd, int N, int C);

// ---- linear, Hugging Face layout: weight is [OC, IC]; out[N, OC] = inp[N, IC] @ weight^T.
// OpenBLAS sgemm. dinp may be null (first layer).
void linear_forward(float* out, const float* inp, const float* weight, int N, int IC, int OC);
void linear_backward(float* dinp, float* dweight, const float* dout, const float* inp, const float* weight,
                     int N, int IC, int OC);

// ---- RoPE, Hugging Face rotate-half convention. The table holds cos and sin of pos * theta^(-2i/D)
// for pos < max_pos, i < D/2 (layout [max_pos, D/2] each). x is [N, nh, D]; pos[n] is the token's
// global position (context parallelism hands in non-contiguous positions).
void rope_table(float* cos, float* sin, int max_pos, int D, float theta);
void rope_forward(float* out, const float* inp, const float* cos, const float* sin, const int32_t* pos, int N,
                  int nh, int D);
void rope_backward(float* dinp, const float* dout, const float* cos, const float* sin, const int32_t* pos, int N,
                   int nh, int D);

// ---- SwiGLU: out = silu(gate) * up, all [N, F].
void swiglu_forward(float* out, const float* gate, const float* up, size_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, size_t n);

// ---- residual add: out = a + b (out may alias a).
void add_forward(float* out, const float* a, const float* b, size_t n);

// ---- fused softmax cross-entropy over logits [N, V]. Targets < 0 are ignored (loss 0, no grad).
// Forward writes per-row loss and log-sum-exp; backward adds dloss * (softmax - onehot) to dlogits,
// with dloss the same scale for every row (1 / number of counted targets for a mean).
void cross_entropy_forward(float* loss, float* lse, const float* logits, const int32_t* targets, int N, int V);
void cross_entropy_backward(float* dlogits, const float* logits, const float* lse, const int32_t* targets,
                            float dloss, int N, int V);

// ---- blockwise attention (FlashAttention-style, online softmax).
// q [B, Tq, H, D], k and v [B, Tk, KH, D], out [B, Tq, H, D], lse [B, H, Tq]; query head h reads
// kv head h / (H / KH) (GQA, K/V never repeated). Scale 1/sqrt(D). Positions are global:
// query i is at q_offset + i, key j at k_offset + j; with causal, key j is visible to query i iff
// k_offset + j <= q_offset + i. A row that sees no key gets out = 0 and lse = -inf, so merging it
// with another partial result (ring attention) leaves that result unchanged.
struct AttentionShape {
  int B = 1, Tq = 0, Tk = 0, H = 1, KH = 1, D = 0;
  int q_offset = 0, k_offset = 0;
  bool causal = true;
  int block_q = 64, block_k = 64;  // tile sizes; any positive values, independent of Tq and Tk
};
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttentionShape& s);
// Recomputes scores blockwise from q, k, v and lse; D_i = rowsum(dout * out) is formed inside.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const AttentionShape& s);
// Merge a partial result (out_b, lse_b) for the same queries into the running (out, lse), in place:
// lse' = log(exp(lse) + exp(lse_b)), out' = out*exp(lse - lse') + out_b*exp(lse_b - lse').
// Layouts as in attention_forward: out [B, Tq, H, D], lse [B, H, Tq].
void attention_merge(float* out, float* lse, const float* out_b, const float* lse_b, int B, int Tq, int H, int D);

// ---- AdamW with decoupled weight decay and bias correction; step counts from 1.
// grad is multiplied by grad_scale first (gradient clipping, 1/accumulation).
struct AdamWParams {
  float lr = 3e-4f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};
void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, const AdamWParams& p,
                  float grad_scale, int step);

// ---- sum of squares in double, fixed-order (for the global gradient norm).
double sum_squares(const float* x, size_t n);

}  // namespace rw::cpu
