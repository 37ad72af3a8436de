// Expert parallelism: the experts of every MoE block sharded over the ep group of the process
// grid, the tokens travelling to their experts' ranks and back inside MoeLayer (models/moe.h, which
// takes the ep communicator: counts allgathered, rows exchanged with alltoallv both ways).
//
// How ep composes with dp. Megatron carves the ep ranks out of the dp dimension; here the grid has
// its own ep axis (rank order tp-cp-ep-dp, dist/process_grid.h), and both axes split the batch:
// the global batch has dp x ep x --batch-size rows, each rank taking its own. Within an ep group
// the ranks route their tokens together (capacity and aux losses are the group's, see moe.h), so
// ep ranks running P micro-batches give exactly what one rank gives on their concatenation.
//   - Expert parameters are sharded over ep: ep rank r holds experts [r*E/ep, (r+1)*E/ep) of every
//     MoE layer; their gradients are complete for the ep group's tokens on that rank, and are then
//     summed over dp and cp (ranks with the same ep rank hold the same experts), which is also
//     the group ZeRO-1 shards their moments over (dp).
//   - Every other parameter (attention, norms, embeddings, routers) is replicated over ep; its
//     gradient is this rank's share, summed over ep, cp and dp (dist/data_parallel.h).
#pragma once
#include <string>

#include "dist/communicator.h"
#include "models/param_table.h"

namespace rw {

// The experts ep rank `rank` of `size` holds: [first, first + count). UserError when the ranks do
// not divide the experts.
struct ExpertShard {
  int first = 0, count = 0;
};
ExpertShard expert_shard(int n_experts, int ep_size, int ep_rank);

// True for the tensors of one expert (model.layers.{i}.mlp.experts.{e}.*), which ep shards.
bool is_expert_param(const std::string& name);

// Sums over the ep group the gradients of every parameter that is replicated over ep (all but the
// experts'), in place in the flat gradient buffer laid out by `table`.
void allreduce_replicated_grads(Communicator& ep, const ParamTable& table, float* grads);

}  // namespace rw
