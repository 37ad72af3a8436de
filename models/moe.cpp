#include "models/moe.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/ops.h"
#include "dist/communicator.h"

namespace rw {

void MoeConfig::validate() const {
  RW_USER_CHECK(n_experts >= 1, "--moe-experts must be positive for an MoE block, got %d", n_experts);
  RW_USER_CHECK(top_k >= 1 && top_k <= n_experts, "--moe-top-k %d must be between 1 and --moe-experts %d", top_k,
                n_experts);
  RW_USER_CHECK(capacity_factor > 0, "--moe-capacity-factor must be positive, got %g", capacity_factor);
  RW_USER_CHECK(aux_coef >= 0 && z_coef >= 0, "--moe-aux-coef and --moe-z-coef must not be negative, got %g, %g",
                aux_coef, z_coef);
}

MoeLayer::MoeLayer(const MoeConfig& cfg, Communicator* ep) : cfg_(cfg), ep_(ep) {
  cfg_.validate();
  if (ep_) {
    ep_rank_ = ep_->rank();
    ep_size_ = ep_->size();
  }
  RW_USER_CHECK(cfg_.n_experts % ep_size_ == 0, "--moe-experts %d must be a multiple of --ep %d", cfg_.n_experts,
                ep_size_);
}

void MoeLayer::set_context_parallel(Communicator* cp) { cp_ = cp && cp->size() > 1 ? cp : nullptr; }

void MoeLayer::exchange(const std::vector<float>& send, const std::vector<int>& send_rows, std::vector<float>& recv,
                        const std::vector<int>& recv_rows) {
  const int C = cfg_.d_model;
  size_t total = 0;
  for (int r : recv_rows) total += static_cast<size_t>(r) * C;
  recv.resize(total);
  if (!ep_) {
    std::copy(send.begin(), send.end(), recv.begin());
    return;
  }
  std::vector<int> send_counts(ep_size_), recv_counts(ep_size_);
  for (int r = 0; r < ep_size_; ++r) {
    send_counts[r] = send_rows[r] * C;
    recv_counts[r] = recv_rows[r] * C;
  }
  ep_->alltoallv(send.data(), send_counts.data(), recv.data(), recv_counts.data());
}

void MoeLayer::forward(float* out, const float* inp, const MoeWeights& w, int N) {
  const int C = cfg_.d_model, F = cfg_.ffn_dim, E = cfg_.n_experts, K = cfg_.top_k, P = ep_size_;
  const int El = local_experts();
  RW_CHECK(static_cast<int>(w.experts.size()) == El, "%zu expert weights for %d local experts", w.experts.size(), El);
  N_ = N;
  inp_.assign(inp, inp + static_cast<size_t>(N) * C);

  // Router: softmax and top-k per token; local sums of the statistics the aux losses need.
  std::vector<float> logits(static_cast<size_t>(N) * E);
  cpu::linear_forward(logits.data(), inp, w.router, N, C, E);
  probs_.resize(logits.size());
  lse_.resize(N);
  choice_.resize(static_cast<size_t>(N) * K);
  weight_.resize(choice_.size());
  std::vector<double> sums(E + 2, 0.0);  // sum of p per expert, sum of lse^2, tokens
  std::vector<double> counts(E, 0.0);    // assignments per expert
  std::vector<char> taken(E);
  for (int n = 0; n < N; ++n) {
    const float* row = &logits[static_cast<size_t>(n) * E];
    float* p = &probs_[static_cast<size_t>(n) * E];
    const float mx = *std::max_element(row, row + E);
    double s = 0;
    for (int e = 0; e < E; ++e) s += std::exp(static_cast<double>(row[e]) - mx);
    const double lse = mx + std::log(s);
    lse_[n] = static_cast<float>(lse);
    for (int e = 0; e < E; ++e) {
      const double pe = std::exp(static_cast<double>(row[e]) - lse);
      p[e] = static_cast<float>(pe);
      sums[e] += pe;
    }
    sums[E] += lse * lse;
    std::fill(taken.begin(), taken.end(), 0);
    double selected = 0;
    for (int j = 0; j < K; ++j) {
      int best = -1;
      for (int e = 0; e < E; ++e)
        if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;  // strict: the lower index wins ties
      taken[best] = 1;
      choice_[n * K + j] = best;
      selected += p[best];
      counts[best] += 1;
    }
    for (int j = 0; j < K; ++j) weight_[n * K + j] = static_cast<float>(p[choice_[n * K + j]] / selected);
  }
  sums[E + 1] = N;

  // The ep group's totals, and every rank's counts (a slot at expert e comes after earlier ranks').
  std::vector<double> all_counts(static_cast<size_t>(P) * E);
  if (ep_) {
    ep_->allreduce(sums.data(), sums.size());
    ep_->allgather(counts.data(), all_counts.data(), E);
  } else {
    all_counts = counts;
  }
  const int cap = static_cast<int>(std::ceil(static_cast<double>(cfg_.capacity_factor) * sums[E + 1] * K / E));
  stats_ = MoeStats{};
  stats_.capacity = cap;
  stats_.load.assign(E, 0);
  std::vector<int> offset(E, 0);                            // this rank's first slot at each expert
  std::vector<int> kept(static_cast<size_t>(P) * E, 0);     // (P, E) assignments within capacity
  for (int e = 0; e < E; ++e) {
    long long before = 0;
    for (int q = 0; q < P; ++q) {
      const long long c = static_cast<long long>(all_counts[static_cast<size_t>(q) * E + e]);
      if (q == ep_rank_) offset[e] = static_cast<int>(before);
      kept[static_cast<size_t>(q) * E + e] = static_cast<int>(std::clamp<long long>(cap - before, 0, c));
      before += c;
    }
    stats_.load[e] = before;
    stats_.dropped += std::max<long long>(0, before - cap);
  }
  // The statistics of the whole sequences: [sums (E + 2), load (E), dropped] over the cp group.
  if (cp_) {
    std::vector<double> totals(sums);
    totals.insert(totals.end(), stats_.load.begin(), stats_.load.end());
    totals.push_back(static_cast<double>(stats_.dropped));
    cp_->allreduce(totals.data(), totals.size());
    std::copy_n(totals.begin(), E + 2, sums.begin());
    for (int e = 0; e < E; ++e) stats_.load[e] = static_cast<long long>(totals[E + 2 + e]);
    stats_.dropped = static_cast<long long>(totals.back());
  }
  tokens_ = sums[E + 1];
  for (int e = 0; e < E; ++e) stats_.aux_loss += E * (stats_.load[e] / (tokens_ * K)) * (sums[e] / tokens_);
  stats_.z_loss = sums[E] / tokens_;

  // Dispatch rows, ordered by expert (so by destination rank), each expert's in token order.
  const int* my_kept = &kept[static_cast<size_t>(ep_rank_) * E];
  std::vector<int> base(E, 0), seen(E, 0);
  for (int e = 1; e < E; ++e) base[e] = base[e - 1] + my_kept[e - 1];
  const int n_send = base[E - 1] + my_kept[E - 1];
  slot_.assign(choice_.size(), -1);
  std::vector<float> send(static_cast<size_t>(n_send) * C);
  for (int n = 0; n < N; ++n)
    for (int j = 0; j < K; ++j) {
      const int e = choice_[n * K + j];
      if (seen[e] < my_kept[e]) {
        const int s = base[e] + seen[e];
        slot_[n * K + j] = s;
        std::copy(inp + static_cast<size_t>(n) * C, inp + static_cast<size_t>(n + 1) * C,
                  &send[static_cast<size_t>(s) * C]);
      }
      ++seen[e];
    }
  send_rows_.assign(P, 0);
  recv_rows_.assign(P, 0);
  expert_rows_.assign(El, 0);
  for (int q = 0; q < P; ++q)
    for (int le = 0; le < El; ++le) {
      send_rows_[q] += my_kept[q * El + le];
      const int k = kept[static_cast<size_t>(q) * E + first_expert() + le];
      recv_rows_[q] += k;
      expert_rows_[le] += k;
    }
  std::vector<float> recv;
  exchange(send, send_rows_, recv, recv_rows_);

  // Received rows arrive by source rank, then expert; the experts want them by expert, then rank
  // (which is the group's token order).
  std::vector<int> start(El + 1, 0);
  for (int le = 0; le < El; ++le) start[le + 1] = start[le] + expert_rows_[le];
  const int M = start[El];
  recv_to_expert_.resize(M);
  {
    std::vector<int> fill = start;
    int r = 0;
    for (int q = 0; q < P; ++q)
      for (int le = 0; le < El; ++le)
        for (int i = 0; i < kept[static_cast<size_t>(q) * E + first_expert() + le]; ++i)
          recv_to_expert_[r++] = fill[le]++;
  }
  x_.resize(static_cast<size_t>(M) * C);
  for (int r = 0; r < M; ++r)
    std::copy(&recv[static_cast<size_t>(r) * C], &recv[static_cast<size_t>(r + 1) * C],
              &x_[static_cast<size_t>(recv_to_expert_[r]) * C]);

  gate_.resize(static_cast<size_t>(M) * F);
  up_.resize(gate_.size());
  act_.resize(gate_.size());
  y_.resize(x_.size());
  for (int le = 0; le < El; ++le) {
    const int m0 = start[le], Me = expert_rows_[le];
    if (Me == 0) continue;
    const ExpertWeights& ew = w.experts[le];
    const size_t xc = static_cast<size_t>(m0) * C, xf = static_cast<size_t>(m0) * F;
    cpu::linear_forward(&gate_[xf], &x_[xc], ew.gate, Me, C, F);
    cpu::linear_forward(&up_[xf], &x_[xc], ew.up, Me, C, F);
    cpu::swiglu_forward(&act_[xf], &gate_[xf], &up_[xf], static_cast<size_t>(Me) * F);
    cpu::linear_forward(&y_[xc], &act_[xf], ew.down, Me, F, C);
  }

  // Results go back to the tokens' ranks, in the dispatch order, and are combined.
  std::vector<float> back(recv.size());
  for (int r = 0; r < M; ++r)
    std::copy(&y_[static_cast<size_t>(recv_to_expert_[r]) * C], &y_[static_cast<size_t>(recv_to_expert_[r] + 1) * C],
              &back[static_cast<size_t>(r) * C]);
  exchange(back, recv_rows_, returned_, send_rows_);
  std::fill(out, out + static_cast<size_t>(N) * C, 0.0f);
  for (int n = 0; n < N; ++n)
    for (int j = 0; j < K; ++j) {
      const int s = slot_[n * K + j];
      if (s < 0) continue;
      const float wj = weight_[n * K + j];
      const float* y = &returned_[static_cast<size_t>(s) * C];
      float* o = out + static_cast<size_t>(n) * C;
      for (int c = 0; c < C; ++c) o[c] += wj * y[c];
    }
}

void MoeLayer::backward(float* dinp, const MoeWeights& grads, const float* dout, const MoeWeights& w,
                        float aux_scale) {
  const int C = cfg_.d_model, F = cfg_.ffn_dim, E = cfg_.n_experts, K = cfg_.top_k, N = N_;
  const int El = local_experts();

  // Combine: gradients of the weights, and of the expert outputs (sent to the experts).
  std::vector<float> dweight(choice_.size(), 0.0f);
  std::vector<float> dsend(returned_.size(), 0.0f);
  for (int n = 0; n < N; ++n)
    for (int j = 0; j < K; ++j) {
      const int s = slot_[n * K + j];
      if (s < 0) continue;
      const float* d = dout + static_cast<size_t>(n) * C;
      const float* y = &returned_[static_cast<size_t>(s) * C];
      float* dy = &dsend[static_cast<size_t>(s) * C];
      double dot = 0;
      for (int c = 0; c < C; ++c) {
        dot += static_cast<double>(d[c]) * y[c];
        dy[c] = weight_[n * K + j] * d[c];
      }
      dweight[n * K + j] = static_cast<float>(dot);
    }
  std::vector<float> drecv;
  exchange(dsend, send_rows_, drecv, recv_rows_);
  const int M = static_cast<int>(recv_to_expert_.size());
  std::vector<float> dy(static_cast<size_t>(M) * C);
  for (int r = 0; r < M; ++r)
    std::copy(&drecv[static_cast<size_t>(r) * C], &drecv[static_cast<size_t>(r + 1) * C],
              &dy[static_cast<size_t>(recv_to_expert_[r]) * C]);

  // Experts, each over its rows.
  std::vector<float> dx(static_cast<size_t>(M) * C, 0.0f), dact(static_cast<size_t>(M) * F, 0.0f);
  std::vector<float> dgate(dact.size(), 0.0f), dup(dact.size(), 0.0f);
  for (int le = 0, m0 = 0; le < El; m0 += expert_rows_[le], ++le) {
    const int Me = expert_rows_[le];
    if (Me == 0) continue;
    const ExpertWeights &ew = w.experts[le], &eg = grads.experts[le];
    const size_t xc = static_cast<size_t>(m0) * C, xf = static_cast<size_t>(m0) * F;
    cpu::linear_backward(&dact[xf], eg.down, &dy[xc], &act_[xf], ew.down, Me, F, C);
    cpu::swiglu_backward(&dgate[xf], &dup[xf], &dact[xf], &gate_[xf], &up_[xf], static_cast<size_t>(Me) * F);
    cpu::linear_backward(&dx[xc], eg.gate, &dgate[xf], &x_[xc], ew.gate, Me, C, F);
    cpu::linear_backward(&dx[xc], eg.up, &dup[xf], &x_[xc], ew.up, Me, C, F);
  }
  std::vector<float> dback(static_cast<size_t>(M) * C), dret;
  for (int r = 0; r < M; ++r)
    std::copy(&dx[static_cast<size_t>(recv_to_expert_[r]) * C], &dx[static_cast<size_t>(recv_to_expert_[r] + 1) * C],
              &dback[static_cast<size_t>(r) * C]);
  exchange(dback, recv_rows_, dret, send_rows_);
  for (int n = 0; n < N; ++n)
    for (int j = 0; j < K; ++j) {
      const int s = slot_[n * K + j];
      if (s < 0) continue;
      const float* d = &dret[static_cast<size_t>(s) * C];
      float* di = dinp + static_cast<size_t>(n) * C;
      for (int c = 0; c < C; ++c) di[c] += d[c];
    }

  // Router: renormalised combine weights, the aux losses, then the softmax. The aux loss is linear
  // in pbar with f_e constant (counts do not depend smoothly on the logits).
  std::vector<double> daux(E);
  for (int e = 0; e < E; ++e)
    daux[e] = static_cast<double>(aux_scale) * cfg_.aux_coef * E * (stats_.load[e] / (tokens_ * K)) / tokens_;
  const double dz = static_cast<double>(aux_scale) * cfg_.z_coef * 2.0 / tokens_;
  std::vector<float> dlogits(static_cast<size_t>(N) * E);
  std::vector<double> dp(E);
  for (int n = 0; n < N; ++n) {
    const float* p = &probs_[static_cast<size_t>(n) * E];
    double selected = 0, dw_w = 0;
    for (int j = 0; j < K; ++j) {
      selected += p[choice_[n * K + j]];
      dw_w += static_cast<double>(dweight[n * K + j]) * weight_[n * K + j];
    }
    dp = daux;
    for (int j = 0; j < K; ++j) dp[choice_[n * K + j]] += (dweight[n * K + j] - dw_w) / selected;
    double dot = 0;
    for (int e = 0; e < E; ++e) dot += p[e] * dp[e];
    for (int e = 0; e < E; ++e)
      dlogits[static_cast<size_t>(n) * E + e] = static_cast<float>(p[e] * (dp[e] - dot) + dz * lse_[n] * p[e]);
  }
  cpu::linear_backward(dinp, grads.router, dlogits.data(), inp_.data(), w.router, N, C, E);
}

}  // namespace rw
