// A LLaMA-family decoder with explicit forward and backward passes, llm.c style: parameters and
// gradients are each one flat allocation described by the ParamTable (Hugging Face names), and
// activations saved for the backward pass live in one more.
//
//   x = embed(tokens)
//   for each layer:  x += o_proj(attention(rope(q(rms(x))), rope(k(rms(x))), v(rms(x))))
//                    x += down(silu(gate(rms(x))) * up(rms(x)))
//   loss = cross_entropy(lm_head(rms(x)), targets)
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"
#include "models/llama_config.h"
#include "models/moe.h"
#include "models/param_table.h"

namespace rw {

class Communicator;  // dist/communicator.h

// Attention over a sequence cut among context-parallel ranks. dist/ring_attention.h's RingAttention
// implements it; the model sees only this interface, so models need not link dist. Shapes as in
// cpu::attention_forward over this rank's local tokens.
class ContextAttention {
 public:
  virtual ~ContextAttention() = default;
  virtual Communicator& comm() = 0;
  virtual void forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const cpu::AttentionShape& s) = 0;
  virtual void backward(float* dq, float* dk, float* dv, const float* dout, const float* q, const float* k,
                        const float* v, const float* out, const float* lse, const cpu::AttentionShape& s) = 0;
};

struct LayerWeights {
  float* attn_norm;  // (C)
  float* wq;         // (H*D, C)
  float* wk;         // (KH*D, C)
  float* wv;         // (KH*D, C)
  float* wo;         // (C, H*D)
  float* mlp_norm;   // (C)
  float* w_gate;     // (F, C)
  float* w_up;       // (F, C)
  float* w_down;     // (C, F)
  MoeWeights moe;    // an MoE layer's router and experts (the dense MLP pointers are then null)
};

struct ModelWeights {
  float* embed;  // (V, C)
  std::vector<LayerWeights> layers;
  float* norm;     // (C)
  float* lm_head;  // (V, C); the embedding when tied
};

class LlamaModel {
 public:
  // Tensor parallelism (tp null or of size 1: off): this rank holds its shard of every split
  // parameter (see ParamTable), heads, kv heads, ffn and vocabulary split over the tp ranks, which
  // must divide them. q/k/v and gate/up are column-parallel, o_proj and down_proj row-parallel
  // (their outputs summed over tp in the forward pass, the inputs' gradients of the column-parallel
  // linears summed in the backward pass), the embedding and LM head vocabulary-parallel. Norm
  // weights are replicated: their gradients come out identical on every tp rank, because all
  // their inputs (residual stream, its gradient after the sums) are, given an allreduce that
  // returns the same bits on every rank (Open MPI's; dist_tensor_parallel_test checks it).
  //
  // Mixture of experts (cfg.moe_experts > 0): the MoE layers' MLPs are models/moe.h blocks; with
  // an expert-parallel group `ep` (null: off) this rank holds only its experts (E/ep of each
  // layer, the table naming only those) and routes its tokens with the other ep ranks. Under tp
  // the MoE blocks are not split: router and experts are replicated over the tp ranks, each of
  // which runs the whole block on the (replicated) tokens, so its output and input gradient need
  // no tp sum and the expert gradients come out identical on every tp rank, like the norms'.
  LlamaModel(const LlamaConfig& cfg, int attn_block_q = 64, int attn_block_k = 64, Communicator* tp = nullptr,
             Communicator* ep = nullptr);

  // Normal(0, 0.02) matrices, ones for norm weights; each tensor from its own seeded stream.
  void init_weights(uint64_t seed);

  // tokens and targets are [B, T] (targets < 0 are ignored). Returns the mean loss over counted
  // targets and keeps what backward needs. Activation memory is sized on first use and regrown.
  // pos[t] is the global position (for RoPE) of token t of every row, null meaning 0..T-1.
  float forward(const int32_t* tokens, const int32_t* targets, int B, int T, const int32_t* pos = nullptr);
  // Context parallelism (null: off, the default): tokens handed to forward are this rank's part
  // of every row (with their global positions, see dist/zigzag.h), attention runs through `cp`,
  // and forward returns the mean loss over all cp ranks' targets. Gradients are then this rank's
  // partial sums; summing them over the cp ranks gives the full sequence's gradient.
  // MoE layers then take their batch statistics over the cp group too (models/moe.h).
  void set_context_parallel(ContextAttention* cp);
  // Blockwise parallel transformer (0: off, the default): the dense MLPs (norm, gate/up, SwiGLU,
  // down) and the final norm, LM head and cross-entropy run over blocks of `rows` of the B*T local
  // tokens, and backward recomputes each block's intermediates from the saved block input instead
  // of keeping them, so their memory grows with the block, not with the sequence. Costs one more
  // forward of those parts. Every row's arithmetic is the unblocked model's, except that a weight
  // gradient adds ceil(B*T / rows) block products instead of one GEMM over all rows: only the
  // float summation order differs, an error of order (blocks) * 2^-24 of the summed magnitudes
  // (measured: 6.2e-7 of a tensor's largest gradient at most, models_bpt_test). MoE layers run
  // unblocked. UserError when rows < 0.
  void set_bpt_block(int rows);
  // Bytes of saved activations and backward scratch a forward of [B, T] tokens allocates.
  size_t activation_bytes(int B, int T) const;
  // Called during backward with an offset once the gradients at [offset, total) are final: after
  // the final norm and LM head, after each layer (last to first), after the embedding (offset 0).
  // Lets data parallelism reduce gradient buckets while the rest of the backward pass runs.
  using GradsFinalHook = std::function<void(size_t offset)>;
  // Adds d(loss_scale * mean loss)/d(params) into the gradient buffer (see core/ops.h convention).
  void backward(float loss_scale = 1.0f, const GradsFinalHook& on_grads_final = {});
  void zero_grad() { grads_.zero_(); }

  const LlamaConfig& config() const { return cfg_; }
  const ParamTable& params() const { return table_; }
  Tensor& param_buffer() { return params_; }
  Tensor& grad_buffer() { return grads_; }
  float* param(const std::string& name) { return params_.data<float>() + table_.at(name).offset; }
  float* grad(const std::string& name) { return grads_.data<float>() + table_.at(name).offset; }
  // [B*T, V/tp] of the last forward; null under BPT, which keeps only a block of them.
  const float* logits() const { return bpt_rows_ > 0 ? nullptr : acts_.logits; }
  const ModelWeights& weights() const { return w_; }  // views into param_buffer(), for inference
  // The last forward's MoE terms summed over layers (0 for a dense model): the weighted aux and
  // z losses that backward adds to the objective (times loss_scale, like the LM loss), the aux
  // (load-balancing) loss alone, and the assignments dropped over capacity.
  double moe_aux_objective() const;
  double moe_aux_loss() const;
  long long moe_dropped() const;

 private:
  ModelWeights bind(float* base) const;
  void ensure_activations(int B, int T);

  LlamaConfig cfg_;
  int block_q_, block_k_;
  Communicator* tp_;  // null when tp is off
  // This rank's share of the split dimensions: heads, kv heads, ffn, vocabulary (v0 its first id).
  int local_heads_, local_kv_heads_, local_ffn_, local_vocab_, v0_;
  ParamTable table_;
  Tensor params_, grads_;
  ModelWeights w_, g_;
  Tensor rope_cos_, rope_sin_;  // [max_seq, D/2]

  // Saved activations (per layer l, N = B*T rows) and backward scratch, all views into one buffer.
  // R is the MLP/loss block: N without BPT, the block's rows with it (see set_bpt_block).
  struct MlpActs {
    float *ln2, *rstd2;    // (R, C), (R)
    float *gate, *up, *h;  // (R, F) each; h = silu(gate) * up
  };
  struct LayerActs {
    float *resid;          // (N, C) the layer's input residual stream
    float *ln1, *rstd1;    // (N, C), (N)
    float *q, *k, *v;      // (N, H*D), (N, KH*D), (N, KH*D); q and k after RoPE
    float *att, *lse;      // (N, H*D), (B, H, T)
    float *resid_mid;      // (N, C) after the attention residual add
    MlpActs mlp;           // R = N, saved; under BPT only an MoE layer's ln2/rstd2 (the rest in mlp_block)
  };
  struct Activations {
    std::vector<LayerActs> layers;
    MlpActs mlp_block;               // under BPT: the one block every dense layer recomputes into
    float *resid_out, *lnf, *rstdf;  // (N, C), (R, C), (R)
    float *logits, *lse, *losses;    // (R, V), (N), (N)
    // backward scratch
    float *dresid, *dln, *dq, *dk, *dv, *dq_pre, *dk_pre, *datt;  // N rows
    float *dgate, *dup, *dh, *dlogits;                            // R rows
  };
  // Carves the activations of [B, T] tokens out of `base` (null: only counts); returns the floats used.
  size_t carve_activations(Activations& a, float* base, int B, int T) const;
  // Rows per MLP/loss block for N tokens: all N when BPT is off.
  int block_rows(int N) const { return bpt_rows_ > 0 ? std::min(bpt_rows_, N) : N; }
  // Where layer `l`'s dense MLP keeps a block's intermediates: its own rows, or the BPT block.
  MlpActs& mlp_acts(int l) { return bpt_rows_ > 0 ? acts_.mlp_block : acts_.layers[l].mlp; }
  // m = norm, gate, up and h of R rows x; down_proj is the caller's.
  void mlp_hidden_forward(MlpActs& m, const float* x, const LayerWeights& w, int R);
  // Adds the dense MLP's gradients of R rows, whose residual gradient is dresid (updated in place).
  void mlp_backward(float* dresid, const float* resid_mid, MlpActs& m, const LayerWeights& w,
                    const LayerWeights& g, int R);
  // Final norm and LM head of rows [r0, r0 + R) into lnf, rstdf and logits (a block's rows under BPT).
  void head_logits_forward(int r0, int R);
  // Adds the gradients of those rows' cross-entropy (dloss per counted target) through the LM head
  // and final norm into dresid and the weights; under BPT it first recomputes their logits.
  void head_backward(int r0, int R, float dloss);

  Tensor act_buffer_;
  Activations acts_{};
  std::vector<int32_t> tokens_, targets_, pos_;
  int B_ = 0, T_ = 0;
  float count_ = 0;  // targets counted in the last forward's mean (on all cp ranks)
  ContextAttention* cp_ = nullptr;
  int bpt_rows_ = 0;  // 0: BPT off
  std::vector<std::unique_ptr<MoeLayer>> moe_;  // per layer, null for a dense one
  Communicator* ep_ = nullptr;                  // null when ep is off
  std::vector<size_t> skipped_at_;  // table positions before which another rank's expert tensor sits
};

}  // namespace rw
