#include "models/param_table.h"

#include <algorithm>

#include "core/check.h"

namespace rw {

// Every tensor starts on a 16-float (64-byte) boundary so kernels see aligned rows.
static size_t align16(size_t n) { return (n + 15) / 16 * 16; }

Shape ParamInfo::local_shape() const {
  if (!split()) return shape;
  Shape s = shape;
  s[shard == ShardRule::SplitRows ? 0 : 1] /= tp_size;
  return s;
}

ParamTable::ParamTable(int tp_size, int tp_rank) : tp_size_(tp_size), tp_rank_(tp_rank) {
  RW_CHECK(tp_size >= 1 && tp_rank >= 0 && tp_rank < tp_size, "tp rank %d of %d", tp_rank, tp_size);
}

void ParamTable::add(const std::string& name, Shape shape, bool decay, ShardRule shard) {
  RW_CHECK(find(name) == nullptr, "parameter %s registered twice", name.c_str());
  const int dim = shard == ShardRule::SplitRows ? 0 : 1;
  RW_CHECK(shard == ShardRule::Replicated || (shape.size() == 2 && shape[dim] % tp_size_ == 0),
           "parameter %s: dimension %d does not split over %d tp ranks", name.c_str(), dim, tp_size_);
  ParamInfo p{name, std::move(shape), total_, decay, shard, tp_size_, tp_rank_};
  total_ = align16(total_ + p.numel());
  entries_.push_back(std::move(p));
}

const ParamInfo* ParamTable::find(const std::string& name) const {
  for (const ParamInfo& p : entries_)
    if (p.name == name) return &p;
  return nullptr;
}

const ParamInfo& ParamTable::at(const std::string& name) const {
  const ParamInfo* p = find(name);
  RW_CHECK(p != nullptr, "no parameter named %s", name.c_str());
  return *p;
}

// A shard is `rows` runs of `run` floats, run r starting at r * stride + first in the logical
// tensor: one run for SplitRows, one per row for SplitCols.
namespace {
struct ShardRuns {
  size_t rows, run, stride, first;
};
ShardRuns shard_runs(const ParamInfo& p, int rank) {
  if (!p.split()) return {1, p.logical_numel(), 0, 0};
  const size_t R = static_cast<size_t>(p.shape[0]), Cn = static_cast<size_t>(p.shape[1]);
  if (p.shard == ShardRule::SplitRows) {
    const size_t n = R / p.tp_size * Cn;
    return {1, n, 0, n * rank};
  }
  const size_t c = Cn / p.tp_size;
  return {R, c, Cn, c * rank};
}
}  // namespace

void slice_shard(const ParamInfo& p, const float* logical, float* local) {
  const ShardRuns s = shard_runs(p, p.tp_rank);
  for (size_t r = 0; r < s.rows; ++r)
    std::copy_n(logical + r * s.stride + s.first, s.run, local + r * s.run);
}

void assemble_shards(const ParamInfo& p, const float* shards, float* logical) {
  if (!p.split()) {
    std::copy_n(shards, p.logical_numel(), logical);
    return;
  }
  for (int rank = 0; rank < p.tp_size; ++rank) {
    const ShardRuns s = shard_runs(p, rank);
    const float* shard = shards + rank * p.numel();
    for (size_t r = 0; r < s.rows; ++r) std::copy_n(shard + r * s.run, s.run, logical + r * s.stride + s.first);
  }
}

}  // namespace rw
