#include "models/llama_inference.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/check.h"
#include "dist/communicator.h"

namespace rw {

using namespace cpu;

LlamaInference::LlamaInference(LlamaModel& model, int capacity, int attn_block)
    : model_(model), w_(model.weights()), capacity_(capacity), block_(attn_block), local_capacity_(capacity) {
  const LlamaConfig& cfg = model.config();
  RW_USER_CHECK(capacity >= 1 && capacity <= cfg.max_seq,
                "an inference context of %d tokens does not fit the model's max_seq %d", capacity, cfg.max_seq);
  // Inference drops no token: an expert may take every token (capacity factor E gives k slots per
  // token and expert, where one would do).
  const MoeConfig unlimited{cfg.d_model, cfg.ffn_dim, cfg.moe_experts, cfg.moe_top_k,
                            static_cast<float>(cfg.moe_experts)};
  for (int l = 0; l < cfg.n_layers; ++l)
    moe_.push_back(cfg.is_moe_layer(l) ? std::make_unique<MoeLayer>(unlimited) : nullptr);
  allocate(capacity, capacity);
}

void LlamaInference::allocate(int cache_rows, int rope_rows) {
  const LlamaConfig& cfg = model_.config();
  const int64_t D = cfg.head_dim(), KVD = static_cast<int64_t>(cfg.n_kv_heads) * D;
  local_capacity_ = cache_rows;
  k_cache_ = Tensor::zeros({cfg.n_layers, cache_rows, KVD});
  v_cache_ = Tensor::zeros({cfg.n_layers, cache_rows, KVD});
  rope_cos_ = Tensor::empty({rope_rows, D / 2});
  rope_sin_ = Tensor::empty({rope_rows, D / 2});
  rope_table(rope_cos_.data<float>(), rope_sin_.data<float>(), rope_rows, static_cast<int>(D), cfg.rope_theta);
}

void LlamaInference::ensure_scratch(int n) {
  if (n <= scratch_n_) return;
  const LlamaConfig& cfg = model_.config();
  const int64_t N = n, C = cfg.d_model, HD = static_cast<int64_t>(cfg.n_heads) * cfg.head_dim();
  const int64_t KVD = static_cast<int64_t>(cfg.n_kv_heads) * cfg.head_dim();
  x_ = Tensor::empty({N, C});
  ln_ = Tensor::empty({N, C});
  rstd_ = Tensor::empty({N});
  q_ = Tensor::empty({N, HD});
  qr_ = Tensor::empty({N, HD});
  k_ = Tensor::empty({N, KVD});
  v_ = Tensor::empty({N, KVD});
  att_ = Tensor::empty({N, HD});
  lse_ = Tensor::empty({static_cast<int64_t>(cfg.n_heads), N});
  gate_ = Tensor::empty({N, cfg.ffn_dim});
  up_ = Tensor::empty({N, cfg.ffn_dim});
  h_ = Tensor::empty({N, cfg.ffn_dim});
  moe_out_ = Tensor::empty({N, C});
  logits_ = Tensor::empty({N, cfg.vocab_size});
  pos_.resize(n);
  scratch_n_ = n;
}

const float* LlamaInference::append(const int32_t* tokens, int n, bool every_position) {
  const LlamaConfig& cfg = model_.config();
  RW_USER_CHECK(n >= 1, "nothing to append to the inference context");
  RW_USER_CHECK(length_ + n <= capacity_, "%d more tokens do not fit the inference context (%d of %d used)", n,
                length_, capacity_);
  for (int i = 0; i < n; ++i)
    RW_USER_CHECK(tokens[i] >= 0 && tokens[i] < cfg.vocab_size, "token id %d is outside the vocab (%d)", tokens[i],
                  cfg.vocab_size);
  if (cp_) {
    RW_CHECK(!every_position, "every_position is not available under context parallelism");
    if (length_ == 0) return prefill_cp(tokens, n);
    RW_CHECK(n == 1, "under context parallelism tokens after the prompt come one at a time");
    return decode_cp(tokens[0]);
  }
  ensure_scratch(n);
  for (int i = 0; i < n; ++i) pos_[i] = length_ + i;
  const int H = cfg.n_heads, KH = cfg.n_kv_heads, D = cfg.head_dim();
  const size_t KVD = static_cast<size_t>(KH) * D;
  // The new queries sit after the cached keys: query i at length_ + i sees keys 0..length_ + i.
  const AttentionShape as{1, n, length_ + n, H, KH, D, length_, 0, true, block_, block_};
  forward_layers(tokens, n, [&](int l) {
    float* k_cache = k_cache_.data<float>() + static_cast<size_t>(l) * local_capacity_ * KVD;
    float* v_cache = v_cache_.data<float>() + static_cast<size_t>(l) * local_capacity_ * KVD;
    std::copy_n(k_.data<float>(), n * KVD, k_cache + length_ * KVD);
    std::copy_n(v_.data<float>(), n * KVD, v_cache + length_ * KVD);
    attention_forward(att_.data<float>(), lse_.data<float>(), qr_.data<float>(), k_cache, v_cache, as);
  });
  length_ += n;
  // Generation needs only the last position's logits; the LM head over the whole prompt would
  // cost n * V * C for nothing.
  const int first = every_position ? 0 : n - 1;
  head_logits(first, n - first);
  return logits_.data<float>() + static_cast<size_t>(n - first - 1) * cfg.vocab_size;
}

template <typename Attend>
void LlamaInference::forward_layers(const int32_t* tokens, int n, const Attend& attend) {
  const LlamaConfig& cfg = model_.config();
  const int C = cfg.d_model, F = cfg.ffn_dim;
  const int H = cfg.n_heads, KH = cfg.n_kv_heads, D = cfg.head_dim();
  const size_t NC = static_cast<size_t>(n) * C, NF = static_cast<size_t>(n) * F;
  float *x = x_.data<float>(), *ln = ln_.data<float>(), *rstd = rstd_.data<float>();
  float *q = q_.data<float>(), *att = att_.data<float>();
  float *gate = gate_.data<float>(), *up = up_.data<float>(), *h = h_.data<float>();
  const float *cos = rope_cos_.data<float>(), *sin = rope_sin_.data<float>();

  embedding_forward(x, tokens, w_.embed, n, C);
  for (int l = 0; l < cfg.n_layers; ++l) {
    const LayerWeights& w = w_.layers[l];
    rmsnorm_forward(ln, rstd, x, w.attn_norm, n, C, cfg.norm_eps);
    linear_forward(q, ln, w.wq, n, C, H * D);
    linear_forward(att, ln, w.wk, n, C, KH * D);  // att is free until attend; KH <= H
    rope_forward(qr_.data<float>(), q, cos, sin, pos_.data(), n, H, D);
    rope_forward(k_.data<float>(), att, cos, sin, pos_.data(), n, KH, D);
    linear_forward(v_.data<float>(), ln, w.wv, n, C, KH * D);
    attend(l);
    linear_forward(ln, att, w.wo, n, H * D, C);
    add_forward(x, x, ln, NC);

    rmsnorm_forward(ln, rstd, x, w.mlp_norm, n, C, cfg.norm_eps);
    if (moe_[l]) {
      moe_[l]->forward(moe_out_.data<float>(), ln, w.moe, n);
      add_forward(x, x, moe_out_.data<float>(), NC);
      continue;
    }
    linear_forward(gate, ln, w.w_gate, n, C, F);
    linear_forward(up, ln, w.w_up, n, C, F);
    swiglu_forward(h, gate, up, NF);
    linear_forward(ln, h, w.w_down, n, F, C);
    add_forward(x, x, ln, NC);
  }
}

void LlamaInference::head_logits(int first, int rows) {
  const LlamaConfig& cfg = model_.config();
  const int C = cfg.d_model;
  rmsnorm_forward(ln_.data<float>(), rstd_.data<float>(), x_.data<float>() + static_cast<size_t>(first) * C, w_.norm,
                  rows, C, cfg.norm_eps);
  linear_forward(logits_.data<float>(), ln_.data<float>(), w_.lm_head, rows, C, cfg.vocab_size);
}

void LlamaInference::set_context_parallel(ContextAttention* cp) {
  RW_CHECK(length_ == 0, "context parallelism is set before the first append");
  const int P = cp ? cp->comm().size() : 1;
  cp_ = P > 1 ? cp : nullptr;
  if (!cp_) return allocate(capacity_, capacity_);
  // A rank caches its real tokens of the two chunks of a padded n-token prompt, at most
  // 2 ceil(n / 2P) < n/P + 2, and its round-robin share of the tokens after it, at most
  // ceil((capacity - n) / P) < (capacity - n)/P + 1: fewer than capacity/P + 3 in all, whatever n.
  // The padding's positions reach up to 2P - 1 past the capacity.
  allocate(std::min(capacity_, (capacity_ + P - 1) / P + 2), capacity_ + 2 * P);
}

const float* LlamaInference::prefill_cp(const int32_t* tokens, int n) {
  const LlamaConfig& cfg = model_.config();
  const int P = cp_->comm().size(), r = cp_->comm().rank(), V = cfg.vocab_size;
  const int H = cfg.n_heads, KH = cfg.n_kv_heads, D = cfg.head_dim();
  const size_t KVD = static_cast<size_t>(KH) * D;
  // Padding at the end cannot change the real tokens under the causal mask. The zigzag layout
  // (dist/zigzag.h): this rank holds chunks r and 2P-1-r of 2P, in that order, so its real tokens
  // (positions below n) come first.
  const int chunk = (n + 2 * P - 1) / (2 * P), local = 2 * chunk;
  ensure_scratch(local);
  std::vector<int32_t> mine(local, 0);
  int real = 0;
  for (int i = 0; i < local; ++i) {
    pos_[i] = (i < chunk ? r : 2 * P - 1 - r) * chunk + i % chunk;
    if (pos_[i] < n) mine[i] = tokens[pos_[i]], real = i + 1;
  }
  RW_CHECK(real <= local_capacity_, "the prompt's part does not fit the context-parallel cache");
  const AttentionShape as{1, local, local, H, KH, D, 0, 0, true, block_, block_};
  forward_layers(mine.data(), local, [&](int l) {
    cp_->forward(att_.data<float>(), lse_.data<float>(), qr_.data<float>(), k_.data<float>(), v_.data<float>(), as);
    std::copy_n(k_.data<float>(), real * KVD, k_cache_.data<float>() + l * local_capacity_ * KVD);
    std::copy_n(v_.data<float>(), real * KVD, v_cache_.data<float>() + l * local_capacity_ * KVD);
  });
  length_ = n;
  local_ = real;
  // The last real token's logits, from the rank holding it, to every rank.
  const int last_chunk = (n - 1) / chunk;
  const int holder = last_chunk < P ? last_chunk : 2 * P - 1 - last_chunk;
  if (r == holder) head_logits((last_chunk < P ? 0 : chunk) + (n - 1) % chunk, 1);
  cp_->comm().broadcast(logits_.data<float>(), V * sizeof(float), holder);
  return logits_.data<float>();
}

const float* LlamaInference::decode_cp(int32_t token) {
  const LlamaConfig& cfg = model_.config();
  const int P = cp_->comm().size(), r = cp_->comm().rank();
  const int H = cfg.n_heads, KH = cfg.n_kv_heads, D = cfg.head_dim(), HD = H * D;
  const size_t KVD = static_cast<size_t>(KH) * D;
  ensure_scratch(1);
  pos_[0] = length_;
  // Round robin: the rank that caches the new token's keys and values.
  const bool owner = length_ % P == r;
  RW_CHECK(local_ + owner <= local_capacity_, "the context-parallel cache is full");
  const int keys = local_ + owner;
  // This rank's (out [H*D], lse [H]) of the new token's attention, then every rank's in rank order.
  std::vector<float> part(HD + H), partials(static_cast<size_t>(P) * (HD + H));
  // Every cached key precedes the new token, so no mask: each rank attends over its own keys and
  // the partial results merge, in rank order so that every rank gets the same bits.
  const AttentionShape as{1, 1, keys, H, KH, D, 0, 0, false, block_, block_};
  forward_layers(&token, 1, [&](int l) {
    float* k_cache = k_cache_.data<float>() + l * local_capacity_ * KVD;
    float* v_cache = v_cache_.data<float>() + l * local_capacity_ * KVD;
    if (owner) {
      std::copy_n(k_.data<float>(), KVD, k_cache + local_ * KVD);
      std::copy_n(v_.data<float>(), KVD, v_cache + local_ * KVD);
    }
    if (keys > 0) {
      attention_forward(part.data(), part.data() + HD, qr_.data<float>(), k_cache, v_cache, as);
    } else {  // saw no key: weight zero in the merge
      std::fill_n(part.data(), HD, 0.0f);
      std::fill_n(part.data() + HD, H, -INFINITY);
    }
    cp_->comm().allgather(part.data(), partials.data(), HD + H);
    float *att = att_.data<float>(), *lse = lse_.data<float>();
    std::copy_n(partials.data(), HD, att);
    std::copy_n(partials.data() + HD, H, lse);
    for (int p = 1; p < P; ++p) {
      const float* other = partials.data() + static_cast<size_t>(p) * (HD + H);
      attention_merge(att, lse, other, other + HD, 1, 1, H, D);
    }
  });
  length_ += 1;
  local_ += owner;
  head_logits(0, 1);
  return logits_.data<float>();
}

int32_t choose_next_token(const float* logits, int V, const SamplingOptions& opts, Rng& rng) {
  if (opts.temperature <= 0.0f) return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);
  const float top = *std::max_element(logits, logits + V);
  std::vector<double> p(V);
  double sum = 0;
  for (int i = 0; i < V; ++i) sum += p[i] = std::exp((logits[i] - top) / opts.temperature);
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
  // The nucleus: the most likely ids until their probability reaches top_p (at least one).
  double mass = 0;
  size_t kept = 0;
  while (kept < order.size() && (kept == 0 || mass < opts.top_p * sum)) mass += p[order[kept++]];
  double u = rng.uniform() * mass;
  for (size_t i = 0; i < kept; ++i) {
    u -= p[order[i]];
    if (u < 0) return order[i];
  }
  return order[kept - 1];
}

std::vector<int32_t> generate(LlamaInference& engine, const std::vector<int32_t>& prompt, const GenerateOptions& opts) {
  RW_USER_CHECK(!prompt.empty(), "cannot generate from an empty prompt");
  RW_USER_CHECK(opts.prefill_block >= 1, "the prefill block must be at least 1 token, got %d", opts.prefill_block);
  const int V = engine.vocab_size();
  engine.reset();
  const float* logits = nullptr;
  // Ring attention prefills the whole prompt at once; its memory is already spread over the ranks.
  const size_t block = engine.context_parallel() ? prompt.size() : static_cast<size_t>(opts.prefill_block);
  for (size_t at = 0; at < prompt.size(); at += block) {
    const int n = static_cast<int>(std::min(block, prompt.size() - at));
    logits = engine.append(prompt.data() + at, n);
  }
  Rng rng(opts.seed);
  std::vector<int32_t> out;
  while (static_cast<int>(out.size()) < opts.max_new_tokens) {
    const int32_t next = choose_next_token(logits, V, opts.sampling, rng);
    if (std::find(opts.stop_tokens.begin(), opts.stop_tokens.end(), next) != opts.stop_tokens.end()) break;
    out.push_back(next);
    if (static_cast<int>(out.size()) == opts.max_new_tokens || engine.length() == engine.capacity()) break;
    logits = engine.append(&next, 1);
  }
  return out;
}

}  // namespace rw
