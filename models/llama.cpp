#include "models/llama.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/check.h"
#include "core/random.h"
#include "dist/communicator.h"
#include "models/vocab_parallel.h"

namespace rw {

using namespace cpu;

static std::string layer_name(int l, const char* rest) { return "model.layers." + std::to_string(l) + "." + rest; }

static std::string expert_name(int l, int e, const char* proj) {
  return layer_name(l, "mlp.experts.") + std::to_string(e) + "." + proj + ".weight";
}

static int tp_of(Communicator* tp) { return tp ? tp->size() : 1; }

static void zero(float* p, size_t n) { std::fill(p, p + n, 0.0f); }

// Each tp rank's share of an input gradient is partial: sum it before it meets a replicated op.
static void sum_partial_over_tp(Communicator* tp, float* x, size_t n) {
  if (tp) tp->allreduce(x, n);
}

LlamaModel::LlamaModel(const LlamaConfig& cfg, int attn_block_q, int attn_block_k, Communicator* tp,
                       Communicator* ep)
    : cfg_(cfg),
      block_q_(attn_block_q),
      block_k_(attn_block_k),
      tp_(tp_of(tp) > 1 ? tp : nullptr),
      local_heads_(cfg.n_heads / tp_of(tp)),
      local_kv_heads_(cfg.n_kv_heads / tp_of(tp)),
      local_ffn_(cfg.ffn_dim / tp_of(tp)),
      local_vocab_(cfg.vocab_size / tp_of(tp)),
      v0_(tp_ ? tp_->rank() * local_vocab_ : 0),
      table_(tp_of(tp), tp_ ? tp_->rank() : 0) {
  cfg_.validate();
  cfg_.check_tensor_parallel(tp_of(tp));
  const int ep_size = ep ? ep->size() : 1;
  RW_USER_CHECK(cfg_.moe_experts > 0 || ep_size == 1, "--ep %d needs an MoE model (--moe-experts)", ep_size);
  ep_ = ep_size > 1 ? ep : nullptr;
  const int held_experts = cfg_.moe_experts / ep_size, first_held = ep ? ep->rank() * held_experts : 0;
  const int64_t C = cfg_.d_model, V = cfg_.vocab_size, F = cfg_.ffn_dim;
  const int64_t HD = cfg_.n_heads * cfg_.head_dim(), KVD = cfg_.n_kv_heads * cfg_.head_dim();
  const ShardRule column = ShardRule::SplitRows, row = ShardRule::SplitCols;
  table_.add("model.embed_tokens.weight", {V, C}, true, ShardRule::SplitRows);
  for (int l = 0; l < cfg_.n_layers; ++l) {
    table_.add(layer_name(l, "input_layernorm.weight"), {C}, false);
    table_.add(layer_name(l, "self_attn.q_proj.weight"), {HD, C}, true, column);
    table_.add(layer_name(l, "self_attn.k_proj.weight"), {KVD, C}, true, column);
    table_.add(layer_name(l, "self_attn.v_proj.weight"), {KVD, C}, true, column);
    table_.add(layer_name(l, "self_attn.o_proj.weight"), {C, HD}, true, row);
    table_.add(layer_name(l, "post_attention_layernorm.weight"), {C}, false);
    if (cfg_.is_moe_layer(l)) {
      MoeConfig mc{cfg_.d_model, cfg_.ffn_dim, cfg_.moe_experts, cfg_.moe_top_k, cfg_.moe_capacity_factor,
                   cfg_.moe_aux_coef, cfg_.moe_z_coef};
      moe_.push_back(std::make_unique<MoeLayer>(mc, ep_size > 1 ? ep : nullptr));
      table_.add(layer_name(l, "mlp.gate.weight"), {cfg_.moe_experts, C}, true);
      for (int e = 0; e < cfg_.moe_experts; ++e) {
        const bool held = e >= first_held && e < first_held + held_experts;
        for (const char* proj : {"gate_proj", "up_proj", "down_proj"}) {
          const Shape shape = proj[0] == 'd' ? Shape{C, F} : Shape{F, C};
          if (held)
            table_.add(expert_name(l, e, proj), shape, true);
          else
            skipped_at_.push_back(table_.entries().size());
        }
      }
    } else {
      moe_.push_back(nullptr);
      table_.add(layer_name(l, "mlp.gate_proj.weight"), {F, C}, true, column);
      table_.add(layer_name(l, "mlp.up_proj.weight"), {F, C}, true, column);
      table_.add(layer_name(l, "mlp.down_proj.weight"), {C, F}, true, row);
    }
  }
  table_.add("model.norm.weight", {C}, false);
  if (!cfg_.tied_embeddings) table_.add("lm_head.weight", {V, C}, true, ShardRule::SplitRows);

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
    const bool moe = cfg_.is_moe_layer(l);
    auto dense = [&](const char* rest) { return moe ? nullptr : at(layer_name(l, rest)); };
    m.layers.push_back({at(layer_name(l, "input_layernorm.weight")), at(layer_name(l, "self_attn.q_proj.weight")),
                        at(layer_name(l, "self_attn.k_proj.weight")), at(layer_name(l, "self_attn.v_proj.weight")),
                        at(layer_name(l, "self_attn.o_proj.weight")),
                        at(layer_name(l, "post_attention_layernorm.weight")), dense("mlp.gate_proj.weight"),
                        dense("mlp.up_proj.weight"), dense("mlp.down_proj.weight"), MoeWeights{}});
    if (!moe) continue;
    MoeWeights& mw = m.layers.back().moe;
    mw.router = at(layer_name(l, "mlp.gate.weight"));
    const MoeLayer& block = *moe_[l];
    for (int e = block.first_expert(); e < block.first_expert() + block.local_experts(); ++e)
      mw.experts.push_back({at(expert_name(l, e, "gate_proj")), at(expert_name(l, e, "up_proj")),
                            at(expert_name(l, e, "down_proj"))});
  }
  m.norm = at("model.norm.weight");
  m.lm_head = cfg_.tied_embeddings ? m.embed : at("lm_head.weight");
  return m;
}

void LlamaModel::init_weights(uint64_t seed) {
  float* base = params_.data<float>();
  std::vector<float> logical;
  for (size_t i = 0; i < table_.entries().size(); ++i) {
    const ParamInfo& p = table_.entries()[i];
    float* x = base + p.offset;
    if (p.shape.size() == 1) {
      for (size_t j = 0; j < p.numel(); ++j) x[j] = 1.0f;
    } else {
      // Drawn at the logical shape and sliced, so any tp size starts from the same weights.
      logical.resize(p.logical_numel());
      // Streams are numbered over the logical table, so an ep rank draws its experts as one process does.
      const size_t skipped = std::upper_bound(skipped_at_.begin(), skipped_at_.end(), i) - skipped_at_.begin();
      Rng rng(seed, i + skipped);
      for (float& v : logical) v = 0.02f * rng.normal();
      slice_shard(p, logical.data(), x);
    }
  }
}

void LlamaModel::set_bpt_block(int rows) {
  RW_USER_CHECK(rows >= 0, "--bpt-block must not be negative (0 = off), got %d", rows);
  bpt_rows_ = rows;
  B_ = T_ = 0;  // the next forward carves the activations anew
}

size_t LlamaModel::activation_bytes(int B, int T) const {
  Activations a;
  return carve_activations(a, nullptr, B, T) * sizeof(float);
}

size_t LlamaModel::carve_activations(Activations& a, float* base, int B, int T) const {
  // Every split width is this rank's share under tensor parallelism.
  const size_t N = static_cast<size_t>(B) * T, C = cfg_.d_model, F = local_ffn_, V = local_vocab_;
  const size_t R = block_rows(static_cast<int>(N));
  const size_t HD = static_cast<size_t>(local_heads_) * cfg_.head_dim();
  const size_t KVD = static_cast<size_t>(local_kv_heads_) * cfg_.head_dim();
  const size_t lse_n = static_cast<size_t>(B) * local_heads_ * T;
  auto pad = [](size_t n) { return (n + 15) / 16 * 16; };
  size_t used = 0;
  auto take = [&](size_t n) {
    float* p = base ? base + used : nullptr;
    used += pad(n);
    return p;
  };
  // An MoE layer's blocks have buffers of their own: it needs only its (unblocked) norm.
  auto take_mlp = [&](size_t rows, bool hidden) {
    MlpActs m{};
    m.ln2 = take(rows * C);
    m.rstd2 = take(rows);
    if (!hidden) return m;
    m.gate = take(rows * F);
    m.up = take(rows * F);
    m.h = take(rows * F);
    return m;
  };
  const bool bpt = bpt_rows_ > 0;
  a.layers.assign(cfg_.n_layers, LayerActs{});
  for (int l = 0; l < cfg_.n_layers; ++l) {
    LayerActs& la = a.layers[l];
    la.resid = take(N * C);
    la.ln1 = take(N * C);
    la.rstd1 = take(N);
    la.q = take(N * HD);
    la.k = take(N * KVD);
    la.v = take(N * KVD);
    la.att = take(N * HD);
    la.lse = take(lse_n);
    la.resid_mid = take(N * C);
    const bool moe = cfg_.is_moe_layer(l);
    if (moe || !bpt) la.mlp = take_mlp(N, !moe);
  }
  a.mlp_block = bpt ? take_mlp(R, true) : MlpActs{};
  a.resid_out = take(N * C);
  a.lnf = take(R * C);
  a.rstdf = take(R);
  a.logits = take(R * V);
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
  a.dgate = take(R * F);
  a.dup = take(R * F);
  a.dh = take(R * F);
  a.dlogits = take(R * V);
  return used;
}

void LlamaModel::ensure_activations(int B, int T) {
  if (B == B_ && T == T_) return;
  RW_USER_CHECK(T <= cfg_.max_seq, "sequence length %d exceeds the model's max_seq %d", T, cfg_.max_seq);
  // Counted first, then carved out of one buffer of that size.
  acts_ = Activations{};
  act_buffer_ = Tensor::zeros({static_cast<int64_t>(carve_activations(acts_, nullptr, B, T))});
  carve_activations(acts_, act_buffer_.data<float>(), B, T);
  B_ = B;
  T_ = T;
  const size_t N = static_cast<size_t>(B) * T;
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
  const int N = B * T, C = cfg_.d_model, F = local_ffn_, V = cfg_.vocab_size, R = block_rows(N);
  const int H = local_heads_, KH = local_kv_heads_, D = cfg_.head_dim();
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

  if (tp_)
    vocab_parallel_embedding_forward(acts_.layers[0].resid, tokens, w_.embed, N, C, v0_, local_vocab_, *tp_);
  else
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
    if (tp_) tp_->allreduce(a.resid_mid, static_cast<size_t>(N) * C);  // row-parallel: sum the partial outputs
    add_forward(a.resid_mid, a.resid_mid, a.resid, static_cast<size_t>(N) * C);

    if (moe_[l]) {
      rmsnorm_forward(a.mlp.ln2, a.mlp.rstd2, a.resid_mid, w.mlp_norm, N, C, eps);
      moe_[l]->forward(resid_next, a.mlp.ln2, w.moe, N);
    } else {
      for (int r0 = 0; r0 < N; r0 += R) {
        const int rows = std::min(R, N - r0);
        MlpActs& m = mlp_acts(l);
        mlp_hidden_forward(m, a.resid_mid + static_cast<size_t>(r0) * C, w, rows);
        linear_forward(resid_next + static_cast<size_t>(r0) * C, m.h, w.w_down, rows, F, C);
      }
    }
    if (tp_ && !moe_[l]) tp_->allreduce(resid_next, static_cast<size_t>(N) * C);  // MoE: complete on every tp rank
    add_forward(resid_next, resid_next, a.resid_mid, static_cast<size_t>(N) * C);
  }
  for (int r0 = 0; r0 < N; r0 += R) {
    const int rows = std::min(R, N - r0);
    head_logits_forward(r0, rows);
    if (tp_)
      vocab_parallel_cross_entropy_forward(acts_.losses + r0, acts_.lse + r0, acts_.logits, targets + r0, rows, v0_,
                                           local_vocab_, *tp_);
    else
      cross_entropy_forward(acts_.losses + r0, acts_.lse + r0, acts_.logits, targets + r0, rows, V);
  }

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

void LlamaModel::mlp_hidden_forward(MlpActs& m, const float* x, const LayerWeights& w, int R) {
  const int C = cfg_.d_model, F = local_ffn_;
  rmsnorm_forward(m.ln2, m.rstd2, x, w.mlp_norm, R, C, cfg_.norm_eps);
  linear_forward(m.gate, m.ln2, w.w_gate, R, C, F);
  linear_forward(m.up, m.ln2, w.w_up, R, C, F);
  swiglu_forward(m.h, m.gate, m.up, static_cast<size_t>(R) * F);
}

void LlamaModel::mlp_backward(float* dresid, const float* resid_mid, MlpActs& m, const LayerWeights& w,
                              const LayerWeights& g, int R) {
  const int C = cfg_.d_model, F = local_ffn_;
  const size_t RF = static_cast<size_t>(R) * F, RC = static_cast<size_t>(R) * C;
  Activations& a = acts_;
  if (bpt_rows_ > 0) mlp_hidden_forward(m, resid_mid, w, R);
  zero(a.dh, RF);
  linear_backward(a.dh, g.w_down, dresid, m.h, w.w_down, R, F, C);
  zero(a.dgate, RF);
  zero(a.dup, RF);
  swiglu_backward(a.dgate, a.dup, a.dh, m.gate, m.up, RF);
  zero(a.dln, RC);
  linear_backward(a.dln, g.w_gate, a.dgate, m.ln2, w.w_gate, R, C, F);
  linear_backward(a.dln, g.w_up, a.dup, m.ln2, w.w_up, R, C, F);
  sum_partial_over_tp(tp_, a.dln, RC);
  rmsnorm_backward(dresid, g.mlp_norm, a.dln, resid_mid, w.mlp_norm, m.rstd2, R, C);
}

void LlamaModel::head_logits_forward(int r0, int R) {
  const int C = cfg_.d_model;
  rmsnorm_forward(acts_.lnf, acts_.rstdf, acts_.resid_out + static_cast<size_t>(r0) * C, w_.norm, R, C,
                  cfg_.norm_eps);
  linear_forward(acts_.logits, acts_.lnf, w_.lm_head, R, C, local_vocab_);
}

void LlamaModel::head_backward(int r0, int R, float dloss) {
  const int C = cfg_.d_model, V = local_vocab_;
  Activations& a = acts_;
  if (bpt_rows_ > 0) head_logits_forward(r0, R);
  zero(a.dlogits, static_cast<size_t>(R) * V);
  const int32_t* targets = targets_.data() + r0;
  if (dloss != 0 && tp_)
    vocab_parallel_cross_entropy_backward(a.dlogits, a.logits, a.lse + r0, targets, dloss, R, v0_, V);
  else if (dloss != 0)
    cross_entropy_backward(a.dlogits, a.logits, a.lse + r0, targets, dloss, R, V);
  zero(a.dln, static_cast<size_t>(R) * C);
  linear_backward(a.dln, g_.lm_head, a.dlogits, a.lnf, w_.lm_head, R, C, V);
  sum_partial_over_tp(tp_, a.dln, static_cast<size_t>(R) * C);
  const size_t at = static_cast<size_t>(r0) * C;
  rmsnorm_backward(a.dresid + at, g_.norm, a.dln, a.resid_out + at, w_.norm, a.rstdf, R, C);
}

void LlamaModel::backward(float loss_scale, const GradsFinalHook& on_grads_final) {
  RW_CHECK(B_ > 0, "backward before forward");
  const int B = B_, T = T_, N = B * T, C = cfg_.d_model, R = block_rows(N);
  const int H = local_heads_, KH = local_kv_heads_, D = cfg_.head_dim();
  const size_t NC = static_cast<size_t>(N) * C;
  const size_t NHD = static_cast<size_t>(N) * H * D, NKVD = static_cast<size_t>(N) * KH * D;
  AttentionShape as{B, T, T, H, KH, D, 0, 0, true, block_q_, block_k_};
  const float *cos = rope_cos_.data<float>(), *sin = rope_sin_.data<float>();
  Activations& a = acts_;
  auto sum_over_tp = [&](float* x, size_t n) { sum_partial_over_tp(tp_, x, n); };

  // loss_scale weights this rank's LM loss by its share of the targets; the aux losses are its ep
  // group's, each ep rank holding a part of their gradient, so they weigh the group's share.
  float aux_scale = loss_scale;
  if (ep_) ep_->allreduce(&aux_scale, 1);

  zero(a.dresid, NC);
  for (int r0 = 0; r0 < N; r0 += R) head_backward(r0, std::min(R, N - r0), count_ > 0 ? loss_scale / count_ : 0.0f);
  if (on_grads_final) on_grads_final(table_.at("model.norm.weight").offset);

  // a.dresid carries d(loss)/d(residual stream) down through the layers.
  for (int l = cfg_.n_layers - 1; l >= 0; --l) {
    const LayerWeights& w = w_.layers[l];
    const LayerWeights& g = g_.layers[l];
    LayerActs& la = a.layers[l];

    if (moe_[l]) {
      zero(a.dln, NC);
      // Every tp rank ran the whole block, so its input gradient is complete: no tp sum.
      moe_[l]->backward(a.dln, g.moe, a.dresid, w.moe, aux_scale);
      rmsnorm_backward(a.dresid, g.mlp_norm, a.dln, la.resid_mid, w.mlp_norm, la.mlp.rstd2, N, C);
    } else {
      for (int r0 = 0; r0 < N; r0 += R) {
        const size_t at = static_cast<size_t>(r0) * C;
        mlp_backward(a.dresid + at, la.resid_mid + at, mlp_acts(l), w, g, std::min(R, N - r0));
      }
    }

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
    sum_over_tp(a.dln, NC);
    rmsnorm_backward(a.dresid, g.attn_norm, a.dln, la.resid, w.attn_norm, la.rstd1, N, C);
    if (on_grads_final) on_grads_final(table_.at(layer_name(l, "input_layernorm.weight")).offset);
  }
  if (tp_)
    vocab_parallel_embedding_backward(g_.embed, a.dresid, tokens_.data(), N, C, v0_, local_vocab_);
  else
    embedding_backward(g_.embed, a.dresid, tokens_.data(), N, C);
  if (on_grads_final) on_grads_final(0);
}

void LlamaModel::set_context_parallel(ContextAttention* cp) {
  cp_ = cp;
  for (auto& m : moe_)
    if (m) m->set_context_parallel(cp ? &cp->comm() : nullptr);
}

double LlamaModel::moe_aux_objective() const {
  double sum = 0;
  for (const auto& m : moe_)
    if (m) sum += m->aux_objective();
  return sum;
}

double LlamaModel::moe_aux_loss() const {
  double sum = 0;
  for (const auto& m : moe_)
    if (m) sum += m->stats().aux_loss;
  return sum;
}

long long LlamaModel::moe_dropped() const {
  long long sum = 0;
  for (const auto& m : moe_)
    if (m) sum += m->stats().dropped;
  return sum;
}

}  // namespace rw
