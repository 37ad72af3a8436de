// Ring attention (context parallel over the ranks of `cp`, DESIGN.md "Ring attention"): each rank
// holds T/P tokens of the sequence; K/V (kv heads only) travel round the ring, one hop per step,
// the transfer of the next block posted before computing on the current one, and the partial
// results are merged with attention_merge. Backward keeps dQ local while a dK/dV accumulator
// travels with its K/V block and arrives home after the last hop.
//
// The layout follows the mask: causal means the zigzag layout (dist/zigzag.h, which balances the
// causal work), non-causal means the contiguous one (rank r holds tokens [r T/P, (r+1) T/P)).
//
// Shapes as in attention_forward with Tq = Tk = T/P, the local length, and zero offsets (positions
// come from the layout): q [B, T/P, H, D], k and v [B, T/P, KH, D], out [B, T/P, H, D],
// lse [B, H, T/P]. Backward accumulates into dq, dk, dv like every backward (core/ops.h). A
// communicator of size 1 makes these exactly attention_forward / attention_backward.
#pragma once
#include "core/ops.h"
#include "dist/communicator.h"
#include "dist/ring_timing.h"
#include "models/llama.h"

namespace rw {

// Who moves a transfer while the rank computes. On CPU ranks Open MPI progresses a transfer only
// inside MPI calls: Poll tests it between kernel calls (each on a few query tiles of one batch row);
// Thread gives it a thread that blocks in wait() (MPI_THREAD_MULTIPLE), which spins on a core.
enum class RingProgress { Poll, Thread };

struct RingOptions {
  RingProgress progress = RingProgress::Poll;
  // Query tiles (block_q rows) per kernel call; Poll tests the pending transfers between calls.
  // With Open MPI's single-copy shared memory (CMA) one test per step moves a whole message; without
  // it a message moves in 32 KB fragments, a few per test, and only 1 tile per call hid them all
  // (docs/distributed.md, "Polling often enough"). The output and dQ do not depend on it (query
  // rows are independent); dK and dV sum the calls' contributions, so another value changes their
  // last bits.
  int tiles_per_call = 4;
  // When not null, one record per step is appended (dist/ring_timing.h), and every step starts
  // with a barrier over the ring so that a step lasts equally long on every rank.
  RingTimes* times = nullptr;
  // Only the transfers, to time them alone: no kernel call, merge or sum, so the outputs are
  // meaningless.
  bool transfers_only = false;
};

void ring_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                            const cpu::AttentionShape& s, Communicator& cp, const RingOptions& opts = {});
void ring_attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                             const float* v, const float* out, const float* lse, const cpu::AttentionShape& s,
                             Communicator& cp, const RingOptions& opts = {});

// The model's attention under context parallelism (LlamaModel::set_context_parallel).
class RingAttention final : public ContextAttention {
 public:
  explicit RingAttention(Communicator& cp) : cp_(cp) {}
  Communicator& comm() override { return cp_; }
  void forward(float* out, float* lse, const float* q, const float* k, const float* v,
               const cpu::AttentionShape& s) override {
    ring_attention_forward(out, lse, q, k, v, s, cp_);
  }
  void backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k, const float* v,
                const float* out, const float* lse, const cpu::AttentionShape& s) override {
    ring_attention_backward(dq, dk, dv, dout, q, k, v, out, lse, s, cp_);
  }

 private:
  Communicator& cp_;
};

}  // namespace rw
