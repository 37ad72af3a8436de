// Autoregressive inference for a LlamaModel's weights: a per-layer KV cache, prefill of many
// tokens per call (long prompts in blocks), and next-token choice (greedy, or temperature and
// top-p sampling). Same layers and kernels as the training forward in models/llama.cpp, one
// sequence at a time; attention reads the cache through cpu::attention_forward with q_offset.
// MoE layers run models/moe.h blocks over the appended tokens with unlimited capacity (no token
// dropped), on a model holding every expert (no ep).
//
// Context parallelism (set_context_parallel): the prompt is prefilled in one call through the
// ContextAttention (ring attention over the zigzag layout), each rank caching only its own tokens'
// keys and values; every later token is computed by every rank alike (same weights and input, so
// the same bits), its attention merged from each rank's part of the cache in rank order.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/random.h"
#include "core/tensor.h"
#include "models/llama.h"

namespace rw {

class LlamaInference {
 public:
  // Reads the weights of `model` (not copied: the model must outlive this) and holds a cache of
  // `capacity` tokens, which must not exceed the model's max_seq.
  LlamaInference(LlamaModel& model, int capacity, int attn_block = 64);
  // Spreads the cache over the ranks of cp->comm() (null or one rank: off); call before the first
  // append. Then the first append after reset() must hold the whole prompt and later ones one token
  // each, every_position is refused, and every rank gets the same logits.
  void set_context_parallel(ContextAttention* cp);
  bool context_parallel() const { return cp_ != nullptr; }

  void reset() { length_ = local_ = 0; }  // forget the cached tokens
  int length() const { return length_; }  // tokens in the cache
  int capacity() const { return capacity_; }

  // Appends n tokens at positions length()..length()+n-1 and returns the logits [V] after the last
  // one (valid until the next call). With every_position, the logits of all n positions are
  // computed, [n, V] from the returned pointer minus (n-1)*V (see all_logits). UserError when the
  // tokens do not fit in the cache.
  const float* append(const int32_t* tokens, int n, bool every_position = false);
  // [n, V] after an append with every_position.
  const float* all_logits() const { return logits_.data<float>(); }
  int vocab_size() const { return model_.config().vocab_size; }

 private:
  void ensure_scratch(int n);
  // A cache of cache_rows tokens and RoPE tables of rope_rows positions.
  void allocate(int cache_rows, int rope_rows);
  // Embeds n tokens at positions pos_[0, n) into x_ and runs every layer over them; attend(l)
  // finds layer l's queries in qr_, keys (after RoPE) in k_ and values in v_, stores the keys and
  // values where they belong and writes the attention output into att_ (and lse_).
  template <typename Attend>
  void forward_layers(const int32_t* tokens, int n, const Attend& attend);
  // The context-parallel appends: the padded prompt's zigzag part, and one new token.
  const float* prefill_cp(const int32_t* tokens, int n);
  const float* decode_cp(int32_t token);
  // Final norm and LM head of `rows` rows of x_ from `first` into logits_.
  void head_logits(int first, int rows);

  LlamaModel& model_;
  ModelWeights w_;
  int capacity_, block_;
  int length_ = 0;  // tokens in the sequence (on every rank, under cp)
  ContextAttention* cp_ = nullptr;
  int local_ = 0;       // under cp: this rank's cached tokens (the first local_ rows of the cache)
  int local_capacity_;  // rows of the cache
  Tensor k_cache_, v_cache_;  // [layers, local_capacity_, KH, D] each, keys after RoPE
  Tensor rope_cos_, rope_sin_;
  int scratch_n_ = 0;
  Tensor x_, ln_, rstd_, q_, qr_, k_, v_, att_, lse_, gate_, up_, h_, moe_out_, logits_;
  std::vector<std::unique_ptr<MoeLayer>> moe_;  // per layer, null for a dense one
  std::vector<int32_t> pos_;
};

struct SamplingOptions {
  float temperature = 0.0f;  // 0: greedy (argmax, lowest id on ties)
  float top_p = 1.0f;        // nucleus: sample among the most likely ids whose mass reaches top_p
};
int32_t choose_next_token(const float* logits, int V, const SamplingOptions& opts, Rng& rng);

struct GenerateOptions {
  int max_new_tokens = 32;
  std::vector<int32_t> stop_tokens;  // end generation after emitting one (not returned)
  int prefill_block = 512;           // prompt tokens per append (all at once under cp)
  SamplingOptions sampling;
  uint64_t seed = 0;
};
// Resets the cache, prefills `prompt` and returns the generated tokens.
std::vector<int32_t> generate(LlamaInference& engine, const std::vector<int32_t>& prompt, const GenerateOptions& opts);

}  // namespace rw
