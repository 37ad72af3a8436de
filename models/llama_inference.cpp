#include "models/llama_inference.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/check.h"

namespace rw {

using namespace cpu;

LlamaInference::LlamaInference(LlamaModel& model, int capacity, int attn_block)
    : model_(model), w_(model.weights()), capacity_(capacity), block_(attn_block) {
  const LlamaConfig& cfg = model.config();
  RW_USER_CHECK(capacity >= 1 && capacity <= cfg.max_seq,
                "an inference context of %d tokens does not fit the model's max_seq %d", capacity, cfg.max_seq);
  // Inference drops no token: an expert may take every token (capacity factor E gives k slots per
  // token and expert, where one would do).
  const MoeConfig unlimited{cfg.d_model, cfg.ffn_dim, cfg.moe_experts, cfg.moe_top_k,
                            static_cast<float>(cfg.moe_experts)};
  for (int l = 0; l < cfg.n_layers; ++l)
    moe_.push_back(cfg.is_moe_layer(l) ? std::make_unique<MoeLayer>(unlimited) : nullptr);
  const int64_t D = cfg.head_dim(), KVD = static_cast<int64_t>(cfg.n_kv_heads) * D;
  k_cache_ = Tensor::zeros({cfg.n_layers, capacity, KVD});
  v_cache_ = Tensor::zeros({cfg.n_layers, capacity, KVD});
  rope_cos_ = Tensor::empty({capacity, D / 2});
  rope_sin_ = Tensor::empty({capacity, D / 2});
  rope_table(rope_cos_.data<float>(), rope_sin_.data<float>(), capacity, static_cast<int>(D), cfg.rope_theta);
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
  const int C = cfg.d_model, F = cfg.ffn_dim, V = cfg.vocab_size;
  const int H = cfg.n_heads, KH = cfg.n_kv_heads, D = cfg.head_dim();
  for (int i = 0; i < n; ++i)
    RW_USER_CHECK(tokens[i] >= 0 && tokens[i] < V, "token id %d is outside the vocab (%d)", tokens[i], V);
  ensure_scratch(n);
  for (int i = 0; i < n; ++i) pos_[i] = length_ + i;
  const size_t NC = static_cast<size_t>(n) * C, NF = static_cast<size_t>(n) * F, KVD = static_cast<size_t>(KH) * D;
  float *x = x_.data<float>(), *ln = ln_.data<float>(), *rstd = rstd_.data<float>();
  float *q = q_.data<float>(), *qr = qr_.data<float>(), *k = k_.data<float>(), *att = att_.data<float>();
  float *gate = gate_.data<float>(), *up = up_.data<float>(), *h = h_.data<float>();
  const float *cos = rope_cos_.data<float>(), *sin = rope_sin_.data<float>();
  // The new queries sit after the cached keys: query i at length_ + i sees keys 0..length_ + i.
  const AttentionShape as{1, n, length_ + n, H, KH, D, length_, 0, true, block_, block_};

  embedding_forward(x, tokens, w_.embed, n, C);
  for (int l = 0; l < cfg.n_layers; ++l) {
    const LayerWeights& w = w_.layers[l];
    float* k_cache = k_cache_.data<float>() + static_cast<size_t>(l) * capacity_ * KVD;
    float* v_cache = v_cache_.data<float>() + static_cast<size_t>(l) * capacity_ * KVD;

    rmsnorm_forward(ln, rstd, x, w.attn_norm, n, C, cfg.norm_eps);
    linear_forward(q, ln, w.wq, n, C, H * D);
    linear_forward(k, ln, w.wk, n, C, KH * D);
    rope_forward(qr, q, cos, sin, pos_.data(), n, H, D);
    rope_forward(k_cache + length_ * KVD, k, cos, sin, pos_.data(), n, KH, D);
    linear_forward(v_cache + length_ * KVD, ln, w.wv, n, C, KH * D);
    attention_forward(att, lse_.data<float>(), qr, k_cache, v_cache, as);
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
  length_ += n;
  // Generation needs only the last position's logits; the LM head over the whole prompt would
  // cost n * V * C for nothing.
  const int first = every_position ? 0 : n - 1, rows = n - first;
  rmsnorm_forward(ln, rstd, x + static_cast<size_t>(first) * C, w_.norm, rows, C, cfg.norm_eps);
  linear_forward(logits_.data<float>(), ln, w_.lm_head, rows, C, V);
  return logits_.data<float>() + static_cast<size_t>(rows - 1) * V;
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
  for (size_t at = 0; at < prompt.size(); at += opts.prefill_block) {
    const int n = static_cast<int>(std::min<size_t>(opts.prefill_block, prompt.size() - at));
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
