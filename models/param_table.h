// The one table of parameters: Hugging Face name, logical shape, how it is split over tensor-
// parallel ranks, offset in the flat buffer, and whether weight decay applies. Allocation,
// initialisation, the optimizer, gradient norms and checkpoint I/O all walk this table, so a new
// layer is one entry plus its forward/backward.
//
// Under tensor parallelism (tp ranks) each rank's flat buffer holds only its shard of every split
// tensor: rows [r*R/tp, (r+1)*R/tp) for SplitRows, columns likewise for SplitCols (Hugging Face
// layout [out, in], so SplitRows is a column-parallel linear and SplitCols a row-parallel one).
// Checkpoints keep logical tensors; slice_shard and assemble_shards map between the two.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace rw {

enum class ShardRule { Replicated, SplitRows, SplitCols };

struct ParamInfo {
  std::string name;  // e.g. "model.layers.0.self_attn.q_proj.weight"
  Shape shape;       // logical, unsharded
  size_t offset;     // in floats, into the flat parameter (and gradient) buffer
  bool decay;        // matrices decay, norm weights do not
  ShardRule shard = ShardRule::Replicated;
  int tp_size = 1, tp_rank = 0;

  Shape local_shape() const;  // this rank's shard
  size_t numel() const { return static_cast<size_t>(shape_numel(local_shape())); }  // floats in the buffer
  size_t logical_numel() const { return static_cast<size_t>(shape_numel(shape)); }
  bool split() const { return shard != ShardRule::Replicated && tp_size > 1; }
};

class ParamTable {
 public:
  // The table of tp rank `tp_rank` out of `tp_size`; every split dimension must divide by tp_size.
  explicit ParamTable(int tp_size = 1, int tp_rank = 0);
  void add(const std::string& name, Shape shape, bool decay, ShardRule shard = ShardRule::Replicated);
  const std::vector<ParamInfo>& entries() const { return entries_; }
  size_t total() const { return total_; }
  // nullptr when absent.
  const ParamInfo* find(const std::string& name) const;
  // Throws (internal error) when absent: the model asks only for names it registered.
  const ParamInfo& at(const std::string& name) const;

 private:
  int tp_size_, tp_rank_;
  std::vector<ParamInfo> entries_;
  size_t total_ = 0;
};

// This rank's shard of the logical tensor (logical_numel floats) into `local` (numel floats).
void slice_shard(const ParamInfo& p, const float* logical, float* local);
// The logical tensor from every tp rank's shard, `shards` holding tp_size * numel floats in rank
// order (what an allgather over the tp group gives).
void assemble_shards(const ParamInfo& p, const float* shards, float* logical);

}  // namespace rw
