#include "models/llama.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/check.h"
#include "core/random.h"
#include "dist/communicator.h"

namespace rw {

using namespace cpu;

static std::string layer_name(int l, const char* rest) { return "model.layers." + std::to_string(l) + "." + rest; }

LlamaModel::LlamaModel(const LlamaConfig& cfg, int attn_block_q, int attn_block_k)
    : cfg_(cfg), block_q_(attn_block_q), block_k_(attn_block_k) {
  cfg_.validate();
  const int64_t C = cfg_.d_model, V = cfg_.vocab_size, F = cfg_.ffn_dim;
  const int64_t HD = cfg_.n_heads * cfg_.head_dim(), KVD = cfg_.n_kv_heads * cfg_.head_dim();
  table_.add("model.embed_tokens.weight", {V, C}, true);
  for (int l = 0; l < cfg_.n_layers; ++l) {
    table_.add(layer_name(l, "input_layernorm.weight"), {C}, false);
    table_.add(layer_name(l, "self_attn.q_proj.weight"), {HD, C}, true);
    table_.add(layer_name(l, "self_attn.k_proj.weight"), {KVD, C}, true);
    table_.add(layer_name(l, "self_attn.v_proj.weight"), {KVD, C}, true);
    table_.add(layer_name(l, "self_attn.o_proj.weight"), {C, HD}, true);
    table_.add(layer_name(l, "post_attention_layernorm.weight"), {C}, false);
    table_.add(layer_name(l, "mlp.gate_proj.weight"), {F, C}, true);
    table_.add(layer_name(l, "mlp.up_proj.weight"), {F, C}, true);
    table_.add(layer_name(l, "mlp.down_proj.weight"), {C, F}, true);
  }
  table_.add("model.norm.weight", {C}, false);
  if (!cfg_.tied_embeddings) table_.add("lm_head.weight", {V, C}, true);

  params_ = Tensor::zeros({static_cast<int64_t>(table_.total())});
  grads_ = Tensor::zeros({static_cast<int64_t>(table_.total())});
  w_ = bind(params_.data<float>());
  g_ = bind(grads_.data<float>());

  const int half = cfg_.head_dim() / 2;
  rope_cos_ = Tensor::empty({cfg_.max_seq, half});
  rope_sin_ = Tensor::empty({cfg_.max_seq, half});
  rope_table(rope_cos_.data<float>(), rope_sin_.data<float>(), cfg_.max_seq, cfg_.head_dim(), cfg_.rope_theta);
}

ModelWeights LlamaModel::bind(float* base) const {
  auto at = [&](const std::string& name) { return base + table_.at(name).offset; };
  ModelWeights m;
  m.embed = at("model.embed_tokens.weight");
  for (int l = 0; l < cfg_.n_layers; ++l) {
    m.layers.push_back({at(layer_name(l, "input_layernorm.weight")), at(layer_name(l, "self_attn.q_proj.weight")),
                        at(layer_name(l, "self_attn.k_proj.weight")), at(layer_name(l, "self_attn.v_proj.weight")),
                        at(layer_name(l, "self_attn.o_proj.weight")),
                        at(layer_name(l, "post_attention_layernorm.weight")), at(layer_name(l, "mlp.gate_proj.weight")),
                        at(layer_name(l, "mlp.up_proj.weight")), at(layer_name(l, "mlp.down_proj.weight"))});
  }
  m.norm = at("model.norm.weight");
  m.lm_head = cfg_.tied_embeddings ? m.embed : at("lm_head.weight");
  return m;
}

void LlamaModel::init_weights(uint64_t seed) {
  float* base = params_.data<float>();
  for (size_t i = 0; i < table_.entries().size(); ++i) {
    const ParamInfo& p = table_.entries()[i];
    float* x = base + p.offset;
    if (p.shape.size() == 1) {
      for (size_t j = 0; j < p.numel(); ++j) x[j] = 1.0f;
    } else {
      Rng rng(seed, i);
      for (size_t j = 0; j < p.numel(); ++j) x[j] = 0.02f * rng.normal();
    }
  }
}

void LlamaModel::ensure_activations(int B, int T) {
  if (B == B_ && T == T_) return;
  RW_USER_CHECK(T <= cfg_.max_seq, "sequence length %d exceeds the model's max_seq %d", T, cfg_.max_seq);
  const size_t N = static_cast<size_t>(B) * T, C = cfg_.d_model, F = cfg_.ffn_dim, V = cfg_.vocab_size;
  const size_t HD = static_cast<size_t>(cfg_.n_heads) * cfg_.head_dim();
  const size_t KVD = static_cast<size_t>(cfg_.n_kv_heads) * cfg_.head_dim();
  const size_t lse_n = static_cast<size_t>(B) * cfg_.n_heads * T;
  auto pad = [](size_t n) { return (n + 15) / 16 * 16; };

  // Two passes over the same carve-up: the first counts, the second hands out pointers.
  float* base = nullptr;
  size_t used = 0;
  auto take = [&](size_t n) {
    float* p = base ? base + used : nullptr;
    used += pad(n);
    return p;
  };
  Activations a;
  for (int pass = 0; pass < 2; ++pass) {
    used = 0;
    a.layers.assign(cfg_.n_layers, LayerActs{});
    for (LayerActs& la : a.layers) {
      la.resid = take(N * C);
      la.ln1 = take(N * C);
      la.rstd1 = take(N);
      la.q = take(N * HD);
      la.k = take(N * KVD);
      la.v = take(N * KVD);
      la.att = take(N * HD);
      la.lse = take(lse_n);
      la.resid_mid = take(N * C);
      la.ln2 = take(N * C);
      la.rstd2 = take(N);
      la.gate = take(N * F);
      la.up = take(N * F);
      la.h = take(N * F);
    }
    a.resid_out = take(N * C);
    a.lnf = take(N * C);
    a.rstdf = take(N);
    a.logits = take(N * V);
    a.lse = take(N);
    a.losses = take(N);
    a.dresid = take(N * C);
    a.dln = take(N * C);
    a.dq = take(N * HD);
    a.dk = take(N * KVD);
    a.dv = take(N * KVD);
    a.dq_pre = take(N * HD);
    a.dk_pre = take(N * KVD);
    a.datt = take(N * HD);
    a.dgate = take(N * F);
    a.dup = take(N * F);
    a.dh = take(N * F);
    a.dlogits = take(N * V);
    if (pass == 0) {
      act_buffer_ = Tensor::zeros({static_cast<int64_t>(used)});
      base = act_buffer_.data<float>();
    }
  }
  acts_ = a;
  B_ = B;
  T_ = T;
  tokens_.resize(N);
  targets_.resize(N);
  pos_.resize(N);
}

float LlamaModel::forward(const int32_t* tokens, const int32_t* targets, int B, int T, const int32_t* pos) {
  ensure_activations(B, T);
  if (pos)
    for (int t = 0; t < T; ++t)
      RW_USER_CHECK(pos[t] >= 0 && pos[t] < cfg_.max_seq, "position %d of token %d is outside the model's max_seq %d",
                    pos[t], t, cfg_.max_seq);
  for (size_t n = 0; n < pos_.size(); ++n) pos_[n] = pos ? pos[n % T] : static_cast<int32_t>(n % T);
  const int N = B * T, C = cfg_.d_model, F = cfg_.ffn_dim, V = cfg_.vocab_size;
  const int H = cfg_.n_heads, KH = cfg_.n_kv_heads, D = cfg_.head_dim();
  const float eps = cfg_.norm_eps;
  for (int n = 0; n < N; ++n) {
    RW_USER_CHECK(tokens[n] >= 0 && tokens[n] < V, "token id %d at position %d is outside the vocab (%d)", tokens[n],
                  n, V);
    RW_USER_CHECK(targets[n] < V, "target id %d at position %d is outside the vocab (%d)", targets[n], n, V);
  }
  tokens_.assign(tokens, tokens + N);
  targets_.assign(targets, targets + N);
  AttentionShape as{B, T, T, H, KH, D, 0, 0, true, block_q_, block_k_};
  const float *cos = rope_cos_.data<float>(), *sin = rope_sin_.data<float>();

  embedding_forward(acts_.layers[0].resid, tokens, w_.embed, N, C);
  for (int l = 0; l < cfg_.n_layers; ++l) {
    const LayerWeights& w = w_.layers[l];
    LayerActs& a = acts_.layers[l];
    float* resid_next = l + 1 < cfg_.n_layers ? acts_.layers[l + 1].resid : acts_.resid_out;

    rmsnorm_forward(a.ln1, a.rstd1, a.resid, w.attn_norm, N, C, eps);
    linear_forward(acts_.dq_pre, a.ln1, w.wq, N, C, H * D);  // pre-RoPE q/k go through backward scratch
    linear_forward(acts_.dk_pre, a.ln1, w.wk, N, C, KH * D);
    linear_forward(a.v, a.ln1, w.wv, N, C, KH * D);
    rope_forward(a.q, acts_.dq_pre, cos, sin, pos_.data(), N, H, D);
    rope_forward(a.k, acts_.dk_pre, cos, sin, pos_.data(), N, KH, D);
    if (cp_)
      cp_->forward(a.att, a.lse, a.q, a.k, a.v, as);
    else
      attention_forward(a.att, a.lse, a.q, a.k, a.v, as);
    linear_forward(a.resid_mid, a.att, w.wo, N, H * D, C);
    add_forward(a.resid_mid, a.resid_mid, a.resid, static_cast<size_t>(N) * C);

    rmsnorm_forward(a.ln2, a.rstd2, a.resid_mid, w.mlp_norm, N, C, eps);
    linear_forward(a.gate, a.ln2, w.w_gate, N, C, F);
    linear_forward(a.up, a.ln2, w.w_up, N, C, F);
    swiglu_forward(a.h, a.gate, a.up, static_cast<size_t>(N) * F);
    linear_forward(resid_next, a.h, w.w_down, N, F, C);
    add_forward(resid_next, resid_next, a.resid_mid, static_cast<size_t>(N) * C);
  }
  rmsnorm_forward(acts_.lnf, acts_.rstdf, acts_.resid_out, w_.norm, N, C, eps);
  linear_forward(acts_.logits, acts_.lnf, w_.lm_head, N, C, V);
  cross_entropy_forward(acts_.losses, acts_.lse, acts_.logits, targets, N, V);

  double sum = 0;  // fixed order: same bits for the same batch
  int count = 0;
  for (int n = 0; n < N; ++n) {
    if (targets[n] < 0) continue;
    sum += acts_.losses[n];
    ++count;
  }
  if (cp_) {  // the mean over every cp rank's targets
    double sum_count[2] = {sum, static_cast<double>(count)};
    cp_->comm().allreduce(sum_count, 2);
    sum = sum_count[0];
    count = static_cast<int>(sum_count[1]);
  }
  count_ = static_cast<float>(count);
  return count ? static_cast<float>(sum / count) : 0.0f;
}

void LlamaModel::backward(float loss_scale, const GradsFinalHook& on_grads_final) {
  RW_CHECK(B_ > 0, "backward before forward");
  const int B = B_, T = T_, N = B * T, C = cfg_.d_model, F = cfg_.ffn_dim, V = cfg_.vocab_size;
  const int H = cfg_.n_heads, KH = cfg_.n_kv_heads, D = cfg_.head_dim();
  const size_t NC = static_cast<size_t>(N) * C, NF = static_cast<size_t>(N) * F;
  const size_t NHD = static_cast<size_t>(N) * H * D, NKVD = static_cast<size_t>(N) * KH * D;
  AttentionShape as{B, T, T, H, KH, D, 0, 0, true, block_q_, block_k_};
  const float *cos = rope_cos_.data<float>(), *sin = rope_sin_.data<float>();
  Activations& a = acts_;
  auto zero = [](float* p, size_t n) { std::fill(p, p + n, 0.0f); };

  zero(a.dlogits, static_cast<size_t>(N) * V);
  if (count_ > 0)
    cross_entropy_backward(a.dlogits, a.logits, a.lse, targets_.data(), loss_scale / count_, N, V);
  zero(a.dln, NC);
  linear_backward(a.dln, g_.lm_head, a.dlogits, a.lnf, w_.lm_head, N, C, V);
  zero(a.dresid, NC);
  rmsnorm_backward(a.dresid, g_.norm, a.dln, a.resid_out, w_.norm, a.rstdf, N, C);
  if (on_grads_final) on_grads_final(table_.at("model.norm.weight").offset);

  // a.dresid carries d(loss)/d(residual stream) down through the layers.
  for (int l = cfg_.n_layers - 1; l >= 0; --l) {
    const LayerWeights& w = w_.layers[l];
    const LayerWeights& g = g_.layers[l];
    LayerActs& la = a.layers[l];

    zero(a.dh, NF);
    linear_backward(a.dh, g.w_down, a.dresid, la.h, w.w_down, N, F, C);
    zero(a.dgate, NF);
    zero(a.dup, NF);
    swiglu_backward(a.dgate, a.dup, a.dh, la.gate, la.up, NF);
    zero(a.dln, NC);
    linear_backward(a.dln, g.w_gate, a.dgate, la.ln2, w.w_gate, N, C, F);
    linear_backward(a.dln, g.w_up, a.dup, la.ln2, w.w_up, N, C, F);
    rmsnorm_backward(a.dresid, g.mlp_norm, a.dln, la.resid_mid, w.mlp_norm, la.rstd2, N, C);

    zero(a.datt, NHD);
    linear_backward(a.datt, g.wo, a.dresid, la.att, w.wo, N, H * D, C);
    zero(a.dq, NHD);
    zero(a.dk, NKVD);
    zero(a.dv, NKVD);
    if (cp_)
      cp_->backward(a.dq, a.dk, a.dv, a.datt, la.q, la.k, la.v, la.att, la.lse, as);
    else
      attention_backward(a.dq, a.dk, a.dv, a.datt, la.q, la.k, la.v, la.att, la.lse, as);
    zero(a.dq_pre, NHD);
    zero(a.dk_pre, NKVD);
    rope_backward(a.dq_pre, a.dq, cos, sin, pos_.data(), N, H, D);
    rope_backward(a.dk_pre, a.dk, cos, sin, pos_.data(), N, KH, D);
    zero(a.dln, NC);
    linear_backward(a.dln, g.wq, a.dq_pre, la.ln1, w.wq, N, C, H * D);
    linear_backward(a.dln, g.wk, a.dk_pre, la.ln1, w.wk, N, C, KH * D);
    linear_backward(a.dln, g.wv, a.dv, la.ln1, w.wv, N, C, KH * D);
    rmsnorm_backward(a.dresid, g.attn_norm, a.dln, la.resid, w.attn_norm, la.rstd1, N, C);
    if (on_grads_final) on_grads_final(table_.at(layer_name(l, "input_layernorm.weight")).offset);
  }
  embedding_backward(g_.embed, a.dresid, tokens_.data(), N, C);
  if (on_grads_final) on_grads_final(0);
}

}  // namespace rw
