// Vocabulary-parallel embedding and cross-entropy (Megatron): tp rank r holds vocabulary rows
// [v0, v0 + Vl) of the embedding and of the LM head, and the full [N, V] logits never exist on
// any rank. Token and target ids are global; the results equal the unsplit ops on every rank.
#pragma once
#include <cstdint>

#include "dist/communicator.h"

namespace rw {

// out[n] = wte_local[tokens[n] - v0] for the rank's own tokens, zero for the others, then summed
// over the tp ranks: each token's row comes from exactly one rank.
void vocab_parallel_embedding_forward(float* out, const int32_t* tokens, const float* wte_local, int N, int C, int v0,
                                      int Vl, Communicator& tp);
// Accumulates dout rows into the rank's own rows only; dout is the full gradient (same on every rank).
void vocab_parallel_embedding_backward(float* dwte_local, const float* dout, const int32_t* tokens, int N, int C,
                                       int v0, int Vl);

// Per-row loss and global log-sum-exp from local logits [N, Vl]: allreduce (max) of the row max,
// allreduce (sum) of the rows' sum of exp and of the target logit (held by one rank). Targets < 0
// are ignored (loss 0).
void vocab_parallel_cross_entropy_forward(float* loss, float* lse, const float* logits_local, const int32_t* targets,
                                          int N, int v0, int Vl, Communicator& tp);
// Adds dloss * (softmax - onehot) to the local dlogits, the one-hot term on the target's rank only.
void vocab_parallel_cross_entropy_backward(float* dlogits_local, const float* logits_local, const float* lse,
                                           const int32_t* targets, float dloss, int N, int v0, int Vl);

}  // namespace rw
