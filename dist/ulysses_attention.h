// Ulysses attention (DeepSpeed-Ulysses; context parallel over the ranks of `cp`): instead of
// moving K/V round a ring, one all-to-all turns every rank's [its tokens, all heads] of q, k and v
// into [all tokens, its heads], each rank runs the ordinary attention kernel on the whole sequence
// for H/P query heads and KH/P kv heads, and a second all-to-all turns the output back. Traffic per
// rank is a constant multiple of its activations whatever P is, but P may not exceed the kv heads.
//
// Layout and shapes are those of ring attention (dist/ring_attention.h): q [B, T/P, H, D], k and v
// [B, T/P, KH, D], out [B, T/P, H, D], lse [B, H, T/P], Tq = Tk = T/P and zero offsets; causal
// means the zigzag layout (dist/zigzag.h), non-causal the contiguous one. Backward accumulates into
// dq, dk, dv, and exchanges q, k, v, out, dout and lse again rather than keeping the forward's
// head-sharded copies for every layer. A communicator of size 1 is exactly the local kernel.
#pragma once
#include "core/ops.h"
#include "dist/communicator.h"
#include "models/llama.h"

namespace rw {

// Throws UserError naming --heads, --kv-heads and --cp unless cp divides both head counts.
void check_ulysses(int heads, int kv_heads, int cp);

void ulysses_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                               const cpu::AttentionShape& s, Communicator& cp);
void ulysses_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                                const float* v, const float* out, const float* lse, const cpu::AttentionShape& s,
                                Communicator& cp);

// The model's attention under context parallelism with --cp-algo ulysses.
class UlyssesAttention final : public ContextAttention {
 public:
  explicit UlyssesAttention(Communicator& cp) : cp_(cp) {}
  Communicator& comm() override { return cp_; }
  void forward(float* out, float* lse, const float* q, const float* k, const float* v,
               const cpu::AttentionShape& s) override {
    ulysses_attention_forward(out, lse, q, k, v, s, cp_);
  }
  void backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                const float* out, const float* lse, const cpu::AttentionShape& s) override {
    ulysses_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, s, cp_);
  }

 private:
  Communicator& cp_;
};

}  // namespace rw
