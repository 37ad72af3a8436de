#include "dist/expert_parallel.h"

#include "core/check.h"

namespace rw {

ExpertShard expert_shard(int n_experts, int ep_size, int ep_rank) {
  RW_USER_CHECK(ep_size >= 1 && n_experts % ep_size == 0, "--moe-experts %d must be a multiple of --ep %d",
                n_experts, ep_size);
  const int count = n_experts / ep_size;
  return {ep_rank * count, count};
}

bool is_expert_param(const std::string& name) { return name.find(".mlp.experts.") != std::string::npos; }

void allreduce_replicated_grads(Communicator& ep, const ParamTable& table, float* grads) {
  if (ep.size() == 1) return;
  // Consecutive replicated tensors are contiguous in the buffer: one allreduce per run of them.
  size_t begin = 0, end = 0;
  auto flush = [&] {
    if (end > begin) ep.allreduce(grads + begin, end - begin);
  };
  for (const ParamInfo& p : table.entries()) {
    if (is_expert_param(p.name)) continue;
    if (p.offset != end) {
      flush();
      begin = p.offset;
    }
    end = p.offset + p.numel();
  }
  flush();
}

}  // namespace rw
