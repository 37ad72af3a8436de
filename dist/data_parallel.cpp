#include "dist/data_parallel.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "dist/expert_parallel.h"

namespace rw {
namespace {

// The ranks that share `grid`'s coordinates except along dp, cp and (when `across_ep`) ep.
std::unique_ptr<Communicator> replica_group(ProcessGrid& grid, bool across_ep) {
  GridCoord first = grid.coord();
  first.dp = first.cp = 0;
  if (across_ep) first.ep = 0;
  return grid.world().split(grid_rank(grid.sizes(), first), grid.world().rank());
}

// Sums one value per rank of `comm` in rank order, so that every rank gets the same bits.
double sum_in_rank_order(Communicator& comm, double mine) {
  if (comm.size() == 1) return mine;
  std::vector<double> parts(comm.size());
  comm.allgather(&mine, parts.data(), 1);
  double sum = 0;
  for (double s : parts) sum += s;
  return sum;
}

}  // namespace

DataParallel::DataParallel(ProcessGrid& grid, const ParamTable& table, Tensor& params, Tensor& grads,
                           const cpu::AdamWParams& hyper, const DataParallelOptions& opts)
    : grid_(grid),
      dp_(grid.dp()),
      replicas_(replica_group(grid, true)),
      expert_replicas_(replica_group(grid, false)),
      table_(table),
      params_(params.data<float>()),
      grads_(grads.data<float>()),
      total_(table.total()),
      hyper_(hyper),
      opts_(opts) {
  RW_CHECK(params.numel() == static_cast<int64_t>(total_) && grads.numel() == static_cast<int64_t>(total_),
           "buffers of %lld and %lld floats for a table of %zu", static_cast<long long>(params.numel()),
           static_cast<long long>(grads.numel()), total_);
  if (opts_.zero1) {
    const size_t n = static_cast<size_t>(dp_.size());
    shard_ = (total_ + n - 1) / n;
    shard_begin_ = std::min(total_, shard_ * dp_.rank());
    shard_end_ = std::min(total_, shard_begin_ + shard_);
    padded_.assign(shard_ * n, 0.0f);
    shard_grads_.assign(shard_, 0.0f);
    exp_avg_.assign(shard_end_ - shard_begin_, 0.0f);
    exp_avg_sq_.assign(shard_end_ - shard_begin_, 0.0f);
  } else {
    make_buckets(std::max<size_t>(1, opts_.bucket_bytes / sizeof(float)));
  }
}

void DataParallel::make_buckets(size_t cap) {
  const std::vector<ParamInfo>& entries = table_.entries();
  // Runs of tensors of one kind, from the last; each cut from its end into buckets.
  for (size_t i = entries.size(); i > 0;) {
    const bool expert = is_expert_param(entries[i - 1].name);
    const size_t run_end = entries[i - 1].offset + entries[i - 1].numel();
    while (i > 0 && is_expert_param(entries[i - 1].name) == expert) --i;
    const size_t run_begin = entries[i].offset;
    Communicator* comm = expert ? expert_replicas_.get() : replicas_.get();
    if (comm->size() == 1) continue;
    for (size_t end = run_end; end > run_begin;) {
      const size_t begin = end - run_begin > cap ? end - cap : run_begin;
      buckets_.push_back({begin, end, comm, nullptr});
      end = begin;
    }
  }
}

void DataParallel::launch(Bucket& b) { b.pending = b.comm->iallreduce(grads_ + b.begin, b.end - b.begin); }

void DataParallel::grads_final_from(size_t offset) {
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].begin >= offset) launch(buckets_[next_bucket_++]);
  // MPI moves non-blocking collectives along only inside MPI calls; polling here lets the
  // launched buckets progress while the next layer's backward runs.
  for (size_t i = 0; i < next_bucket_; ++i)
    if (buckets_[i].pending) buckets_[i].pending->test();
}

float DataParallel::reduce_grads() {
  if (!opts_.zero1) {
    grads_final_from(0);
    for (Bucket& b : buckets_) {
      b.pending->wait();
      b.pending.reset();
    }
    next_bucket_ = 0;
    return static_cast<float>(std::sqrt(logical_squares(grads_, 0, total_)));
  }
  if (grid_.cp().size() > 1) grid_.cp().allreduce(grads_, total_);
  allreduce_replicated_grads(grid_.ep(), table_, grads_);
  std::copy(grads_, grads_ + total_, padded_.begin());
  dp_.reduce_scatter(padded_.data(), shard_grads_.data(), shard_);
  // Each rank's share of the squared norm, summed in rank order so every rank gets the same bits.
  return static_cast<float>(
      std::sqrt(sum_in_rank_order(dp_, logical_squares(shard_grads_.data(), shard_begin_, shard_end_))));
}

double DataParallel::logical_squares(const float* g, size_t begin, size_t end) {
  Communicator &tp = grid_.tp(), &ep = grid_.ep();
  if (tp.size() == 1 && ep.size() == 1) return cpu::sum_squares(g, end - begin);
  double sum = 0;
  for (const ParamInfo& p : table_.entries()) {
    const size_t lo = std::max(p.offset, begin), hi = std::min(p.offset + p.numel(), end);
    const bool counted = (p.split() || tp.rank() == 0) && (ep.rank() == 0 || is_expert_param(p.name));
    if (lo < hi && counted) sum += cpu::sum_squares(g + (lo - begin), hi - lo);
  }
  // Every tp and ep rank clips by the same bits, so replicas stay identical.
  return sum_in_rank_order(ep, sum_in_rank_order(tp, sum));
}

void DataParallel::zero1_step(float lr, float grad_scale) {
  RW_CHECK(opts_.zero1, "zero1_step without --zero 1");
  ++adam_step_;
  for (const ParamInfo& p : table_.entries()) {
    const size_t lo = std::max(p.offset, shard_begin_), hi = std::min(p.offset + p.numel(), shard_end_);
    if (lo >= hi) continue;
    cpu::AdamWParams h = hyper_;
    h.lr = lr;
    if (!p.decay) h.weight_decay = 0.0f;
    const size_t s = lo - shard_begin_;
    cpu::adamw_update(params_ + lo, shard_grads_.data() + s, exp_avg_.data() + s, exp_avg_sq_.data() + s, hi - lo, h,
                      grad_scale, adam_step_);
  }
  allgather_shards(params_ + shard_begin_, params_);
}

void DataParallel::allgather_shards(const float* shard, float* full) {
  // shard_grads_ is free between steps: it serves as the padded send buffer.
  std::fill(shard_grads_.begin(), shard_grads_.end(), 0.0f);
  std::copy(shard, shard + (shard_end_ - shard_begin_), shard_grads_.begin());
  dp_.allgather(shard_grads_.data(), padded_.data(), shard_);
  std::copy(padded_.begin(), padded_.begin() + total_, full);
}

int DataParallel::gather_zero1_state(float* exp_avg, float* exp_avg_sq) {
  RW_CHECK(opts_.zero1, "gather_zero1_state without --zero 1");
  allgather_shards(exp_avg_.data(), exp_avg);
  allgather_shards(exp_avg_sq_.data(), exp_avg_sq);
  return adam_step_;
}

void DataParallel::load_zero1_state(const float* exp_avg, const float* exp_avg_sq, int adam_step) {
  RW_CHECK(opts_.zero1, "load_zero1_state without --zero 1");
  std::copy(exp_avg + shard_begin_, exp_avg + shard_end_, exp_avg_.begin());
  std::copy(exp_avg_sq + shard_begin_, exp_avg_sq + shard_end_, exp_avg_sq_.begin());
  adam_step_ = adam_step;
}

}  // namespace rw
