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
  RW_USER_CHECK(cfg_.moe_experts == 0 || !tp_, "--tp with --moe-experts is not implemented yet");
  const int ep_size = ep ? ep->size() : 1;
  RW_USER_CHECK(cfg_.moe_experts > 0 || ep_size == 1, "--ep %d needs an MoE model (--moe-experts)", ep_size);
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

void LlamaModel::ensure_activations(int B, int T) {
  if (B == B_ && T == T_) return;
  RW_USER_CHECK(T <= cfg_.max_seq, "sequence length %d exceeds the model's max_seq %d", T, cfg_.max_seq);
  // Every split width is this rank's share under tensor parallelism.
  const size_t N = static_cast<size_t>(B) * T, C = cfg_.d_model, F = local_ffn_, V = local_vocab_;
  const size_t HD = static_cast<size_t>(local_heads_) * cfg_.head_dim();
  const size_t KVD = static_cast<size_t>(local_kv_heads_) * cfg_.head_dim();
  const size_t lse_n = static_cast<size_t>(B) * local_heads_ * T;
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
  const int N = B * T, C = cfg_.d_model, F = local_ffn_, V = cfg_.vocab_size;
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

    rmsnorm_forward(a.ln2, a.rstd2, a.resid_mid, w.mlp_norm, N, C, eps);
    if (moe_[l]) {
      moe_[l]->forward(resid_next, a.ln2, w.moe, N);
    } else {
      linear_forward(a.gate, a.ln2, w.w_gate, N, C, F);
      linear_forward(a.up, a.ln2, w.w_up, N, C, F);
      swiglu_forward(a.h, a.gate, a.up, static_cast<size_t>(N) * F);
      linear_forward(resid_next, a.h, w.w_down, N, F, C);
    }
    if (tp_) tp_->allreduce(resid_next, static_cast<size_t>(N) * C);
    add_forward(resid_next, resid_next, a.resid_mid, static_cast<size_t>(N) * C);
  }
  rmsnorm_forward(acts_.lnf, acts_.rstdf, acts_.resid_out, w_.norm, N, C, eps);
  linear_forward(acts_.logits, acts_.lnf, w_.lm_head, N, C, local_vocab_);
  if (tp_)
    vocab_parallel_cross_entropy_forward(acts_.losses, acts_.lse, acts_.logits, targets, N, v0_, local_vocab_, *tp_);
  else
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
  const int B = B_, T = T_, N = B * T, C = cfg_.d_model, F = local_ffn_, V = local_vocab_;
  const int H = local_heads_, KH = local_kv_heads_, D = cfg_.head_dim();
  const size_t NC = static_cast<size_t>(N) * C, NF = static_cast<size_t>(N) * F;
  const size_t NHD = static_cast<size_t>(N) * H * D, NKVD = static_cast<size_t>(N) * KH * D;
  AttentionShape as{B, T, T, H, KH, D, 0, 0, true, block_q_, block_k_};
  const float *cos = rope_cos_.data<float>(), *sin = rope_sin_.data<float>();
  Activations& a = acts_;
  auto zero = [](float* p, size_t n) { std::fill(p, p + n, 0.0f); };

  zero(a.dlogits, static_cast<size_t>(N) * V);
  if (count_ > 0 && tp_)
    vocab_parallel_cross_entropy_backward(a.dlogits, a.logits, a.lse, targets_.data(), loss_scale / count_, N, v0_, V);
  else if (count_ > 0)
    cross_entropy_backward(a.dlogits, a.logits, a.lse, targets_.data(), loss_scale / count_, N, V);
  // Each tp rank's share of an input gradient is partial: sum it before it meets a replicated op.
  auto sum_over_tp = [&](float* x) {
    if (tp_) tp_->allreduce(x, NC);
  };
  zero(a.dln, NC);
  linear_backward(a.dln, g_.lm_head, a.dlogits, a.lnf, w_.lm_head, N, C, V);
  sum_over_tp(a.dln);
  zero(a.dresid, NC);
  rmsnorm_backward(a.dresid, g_.norm, a.dln, a.resid_out, w_.norm, a.rstdf, N, C);
  if (on_grads_final) on_grads_final(table_.at("model.norm.weight").offset);

  // a.dresid carries d(loss)/d(residual stream) down through the layers.
  for (int l = cfg_.n_layers - 1; l >= 0; --l) {
    const LayerWeights& w = w_.layers[l];
    const LayerWeights& g = g_.layers[l];
    LayerActs& la = a.layers[l];

    zero(a.dln, NC);
    if (moe_[l]) {
      // loss_scale weights this rank's LM loss by its share of the targets, about 1/ep of its ep
      // group's; the aux losses are the group's, each rank holding a part of their gradient, so
      // they weigh ep times more (exact when the ep ranks count the same targets, as training does).
      moe_[l]->backward(a.dln, g.moe, a.dresid, w.moe, loss_scale * moe_[l]->ep_size());
    } else {
      zero(a.dh, NF);
      linear_backward(a.dh, g.w_down, a.dresid, la.h, w.w_down, N, F, C);
      zero(a.dgate, NF);
      zero(a.dup, NF);
      swiglu_backward(a.dgate, a.dup, a.dh, la.gate, la.up, NF);
      linear_backward(a.dln, g.w_gate, a.dgate, la.ln2, w.w_gate, N, C, F);
      linear_backward(a.dln, g.w_up, a.dup, la.ln2, w.w_up, N, C, F);
    }
    sum_over_tp(a.dln);
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
    sum_over_tp(a.dln);
    rmsnorm_backward(a.dresid, g.attn_norm, a.dln, la.resid, w.attn_norm, la.rstd1, N, C);
    if (on_grads_final) on_grads_final(table_.at(layer_name(l, "input_layernorm.weight")).offset);
  }
  if (tp_)
    vocab_parallel_embedding_backward(g_.embed, a.dresid, tokens_.data(), N, C, v0_, local_vocab_);
  else
    embedding_backward(g_.embed, a.dresid, tokens_.data(), N, C);
  if (on_grads_final) on_grads_final(0);
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
