// A mixture-of-experts feed-forward block (Switch/Mixtral style) with explicit forward and
// backward passes, usable on one process or with its experts sharded over an expert-parallel
// group (dist/expert_parallel.h).
//
//   logits = x W_r^T (N, E)   p = softmax(logits)   top-k experts per token (ties: lower index)
//   capacity = ceil(capacity_factor * tokens * k / E) slots per expert, filled in token order;
//   an assignment past its expert's capacity is dropped (contributes zero: the residual carries it)
//   y[n] = sum over kept choices j of w[n, j] * expert_j(x[n]), with w = p of the chosen experts
//          renormalised over the top-k (Mixtral), dropped choices keeping their share of the sum
//   expert(x) = down(silu(gate(x)) * up(x))
//   aux loss (Switch) = E * sum_e f_e * pbar_e, f_e = assignments to e / (tokens * k) (before
//          capacity), pbar_e = mean over tokens of p[:, e]; z-loss = mean over tokens of lse(logits)^2
//
// Hugging Face names (Mixtral's layout with LLaMA's projection names; Mixtral's w1 = gate_proj,
// w3 = up_proj, w2 = down_proj, and its block_sparse_moe = mlp):
//   model.layers.{i}.mlp.gate.weight (E, C), model.layers.{i}.mlp.experts.{e}.{gate,up}_proj.weight
//   (F, C), model.layers.{i}.mlp.experts.{e}.down_proj.weight (C, F).
//
// Expert parallelism: with an ep communicator of P ranks, a rank holds experts
// [rank * E/P, (rank+1) * E/P) and routes its own N tokens. Routing, capacity and both aux losses
// are those of the ep group's tokens taken together, ranks in order (rank 0's tokens first), so P
// ranks give exactly what one process gives on the concatenated batch: per-expert counts are
// allgathered (an assignment's slot at expert e counts the earlier ranks' assignments to e), and
// the router statistics allreduced. Token rows travel to their experts' ranks and back with
// alltoallv. Gradients: an expert's are complete on its owner rank; the router's (and the input's)
// are this rank's share, which summed over the ep ranks (and cp ranks, below) gives the group's.
//
// Context parallelism: with a cp communicator (set_context_parallel) the rank's tokens are its part
// of every sequence. Routing is per token, so only the batch statistics change: the load (f_e), the
// mean probabilities (pbar_e), the z-loss and the dropped count are those of the whole sequences,
// summed over the cp ranks (and the ep group), so the aux losses equal one process's. Capacity
// stays per rank: each cp rank's ep group fills ceil(capacity_factor * its tokens * k / E) slots
// per expert with its own tokens, as a dp rank does with its rows; with no drops the block equals
// one process on the whole sequences, with drops it equals one process per cp part.
#pragma once
#include <cstdint>
#include <vector>


namespace rw {

class Communicator;  // dist/communicator.h

struct MoeConfig {
  int d_model = 0;        // C
  int ffn_dim = 0;        // F of each expert
  int n_experts = 0;      // E
  int top_k = 2;          // K
  float capacity_factor = 1.25f;
  float aux_coef = 0.01f;  // weight of the load-balancing loss in the objective
  float z_coef = 0.001f;   // weight of the router z-loss
  // UserError naming the field when the shape is impossible (top_k > E, ...).
  void validate() const;
};

struct ExpertWeights {
  float* gate;  // (F, C)
  float* up;    // (F, C)
  float* down;  // (C, F)
};

// The same layout serves parameters and gradients.
struct MoeWeights {
  float* router;                       // (E, C)
  std::vector<ExpertWeights> experts;  // this rank's E / P experts, in expert order
};

// What the last forward measured over the tokens of the ep group (and cp group, see above).
struct MoeStats {
  double aux_loss = 0;  // E * sum f_e pbar_e (1 when perfectly balanced)
  double z_loss = 0;
  long long dropped = 0;        // assignments over capacity
  std::vector<long long> load;  // (E) assignments routed to each expert, before capacity
  int capacity = 0;             // slots per expert of this rank's ep group
};

class MoeLayer {
 public:
  // ep: the expert-parallel group (null: one process holding every expert). E % P must be 0.
  explicit MoeLayer(const MoeConfig& cfg, Communicator* ep = nullptr);
  // The cp group whose ranks hold the other parts of the sequences (null: off, the default).
  void set_context_parallel(Communicator* cp);

  // out (N, C) = the block's output for inp (N, C); inp is copied for the backward pass.
  void forward(float* out, const float* inp, const MoeWeights& w, int N);
  // The weighted aux terms aux_coef * aux_loss + z_coef * z_loss of the last forward (the same on
  // every ep and cp rank): what the block adds to the training objective.
  double aux_objective() const { return cfg_.aux_coef * stats_.aux_loss + cfg_.z_coef * stats_.z_loss; }
  // Accumulates into dinp and grads the gradient of sum(dout * out) + aux_scale * aux_objective()
  // (core/ops.h convention). Collective over the ep group, as forward is.
  void backward(float* dinp, const MoeWeights& grads, const float* dout, const MoeWeights& w,
                float aux_scale = 1.0f);

  const MoeStats& stats() const { return stats_; }
  const MoeConfig& config() const { return cfg_; }
  int local_experts() const { return cfg_.n_experts / ep_size_; }
  int first_expert() const { return ep_rank_ * local_experts(); }

 private:
  // Sends rows (row counts per destination rank) and receives the peers' rows.
  void exchange(const std::vector<float>& send, const std::vector<int>& send_rows, std::vector<float>& recv,
                const std::vector<int>& recv_rows);

  MoeConfig cfg_;
  Communicator* ep_;
  Communicator* cp_ = nullptr;
  int ep_rank_ = 0, ep_size_ = 1;
  MoeStats stats_;

  // Saved by forward for backward.
  int N_ = 0;
  double tokens_ = 0;                 // over the ep and cp groups
  std::vector<float> inp_;            // (N, C)
  std::vector<float> probs_, lse_;    // (N, E), (N)
  std::vector<int> choice_;           // (N, K) chosen experts
  std::vector<float> weight_;         // (N, K) combine weights
  std::vector<int> slot_;             // (N, K) row in the dispatch buffer, -1 when dropped
  std::vector<int> send_rows_, recv_rows_;  // per ep rank
  std::vector<int> recv_to_expert_;   // dispatch-received row -> row of the expert-major buffer
  std::vector<int> expert_rows_;      // (E/P) rows each local expert processed
  std::vector<float> x_, gate_, up_, act_, y_;  // expert-major: (M, C), (M, F) x3, (M, C)
  std::vector<float> returned_;       // expert outputs back at the dispatch rows (rows, C)
};

}  // namespace rw
