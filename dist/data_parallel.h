// Gradient reduction over the process grid and data-parallel optimizer steps: every rank computes
// gradients on its own share of the global batch (its rows under dp and ep, its part of each
// sequence under cp), and the gradients are summed over the ranks that hold the same parameters
// before the update:
//   - parameters replicated over ep (all but the experts): over dp x cp x ep, the ranks with the
//     same tp coordinate ("replicas");
//   - experts (dist/expert_parallel.h): over dp x cp, the ranks with the same tp and ep coordinates
//     ("expert replicas"), since an ep rank's expert gradients already cover its ep group's tokens.
//
// Plain mode reduces gradient buckets (contiguous ranges of the flat buffer, --bucket-mb each,
// taken from the end of the buffer, since the backward pass finishes the LM head first and the
// embedding last; a bucket never mixes expert and replicated tensors, which reduce over different
// groups) with non-blocking allreduces launched from LlamaModel's grads-final hook, so
// communication overlaps the rest of the backward pass, under cp and ep as well.
//
// ZeRO-1 shards the AdamW moments over the dp group instead (its ranks hold the same parameters,
// experts included): rank r owns the contiguous range [r*S, (r+1)*S) of the flat parameter buffer
// (S = ceil(total/dp)); after the backward pass (not overlapped) the gradients are first summed
// over cp (all) and ep (replicated tensors), then reduce-scattered over dp; each rank updates its
// range, and the parameters are allgathered over dp. Weight decay stays per tensor: the update
// runs over the intersection of the shard with each ParamTable entry.
//
// Under tensor parallelism each rank's buffers hold its tp shards (see ParamTable). The gradient
// norm is that of the logical gradient, as one process computes it: every tp rank's shards of
// split tensors count, replicated tensors once (from tp rank 0); every ep rank's experts count,
// the tensors replicated over ep once (from ep rank 0).
//
// Gradients are summed, not averaged: the caller scales each rank's loss by its share of the
// global target count, which gives the global mean exactly even when ranks count different numbers
// of targets.
#pragma once
#include <memory>
#include <vector>

#include "core/ops.h"
#include "core/tensor.h"
#include "dist/communicator.h"
#include "dist/process_grid.h"
#include "models/param_table.h"

namespace rw {

struct DataParallelOptions {
  size_t bucket_bytes = size_t{25} << 20;
  bool zero1 = false;
};

class DataParallel {
 public:
  // params and grads are this rank's flat buffers, laid out by `table`; they and `grid` must
  // outlive this. Collective over the grid's world: it builds the two replica groups.
  DataParallel(ProcessGrid& grid, const ParamTable& table, Tensor& params, Tensor& grads,
               const cpu::AdamWParams& hyper, const DataParallelOptions& opts);

  // LlamaModel's GradsFinalHook for the step's last backward: grads[offset, total) are final, so
  // every bucket inside that range starts reducing.
  void grads_final_from(size_t offset);
  // Finishes the gradient sum (what the hook did not start, then waits for all) and returns the
  // global gradient norm, identical on every rank.
  float reduce_grads();
  // ZeRO-1 only: AdamW on this rank's shard with grads * grad_scale, then allgather the parameters.
  void zero1_step(float lr, float grad_scale);

  // ZeRO-1 checkpoints: every dp rank's moment shards gathered into full buffers of table.total()
  // floats on every rank (collective; returns AdamW's step count), and back from full buffers into
  // this rank's shard.
  int gather_zero1_state(float* exp_avg, float* exp_avg_sq);
  void load_zero1_state(const float* exp_avg, const float* exp_avg_sq, int adam_step);

  bool zero1() const { return opts_.zero1; }

 private:
  struct Bucket {
    size_t begin, end;
    Communicator* comm;  // the replicas or the expert replicas
    std::unique_ptr<Request> pending;
  };
  void launch(Bucket& b);
  // Buckets of at most `cap` floats over [0, total_), from the end, cut where expert and replicated
  // tensors meet; none for a group of one rank.
  void make_buckets(size_t cap);
  // The squared gradient norm of grads [begin, end) of the flat buffer (held at `g`, which is
  // grads_ + begin) as it counts towards the logical norm, summed over the tp and ep groups.
  double logical_squares(const float* g, size_t begin, size_t end);
  // This rank's [shard_begin_, shard_end_) of `shard`, zero-padded to shard_ floats, gathered from
  // every rank into `full` (total_ floats).
  void allgather_shards(const float* shard, float* full);

  ProcessGrid& grid_;
  Communicator& dp_;
  std::unique_ptr<Communicator> replicas_, expert_replicas_;
  const ParamTable& table_;
  float* params_;
  float* grads_;
  size_t total_;
  cpu::AdamWParams hyper_;
  DataParallelOptions opts_;
  std::vector<Bucket> buckets_;  // from the end of the buffer to the start; plain mode only
  size_t next_bucket_ = 0;       // the first bucket not yet launched this step

  // ZeRO-1 state: this rank's range of the flat buffer, its moments and staging buffers.
  size_t shard_ = 0, shard_begin_ = 0, shard_end_ = 0;
  std::vector<float> padded_, shard_grads_, exp_avg_, exp_avg_sq_;
  int adam_step_ = 0;
};

}  // namespace rw
