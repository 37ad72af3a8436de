#include "dist/ring_timing.h"

#include <algorithm>

#include "core/check.h"

namespace rw {
namespace {

constexpr size_t kFields = 4;  // the doubles of one RingStepTime, in declaration order

// Step i across the ranks: the longest rank's step, the slowest rank's computation, and the latest
// end of a rank's computing and waiting.
struct CriticalStep {
  double step = 0, compute = 0, busy = 0;
  double exposed() const { return busy - compute; }
  double other() const { return step - busy; }
};

CriticalStep critical_step(const std::vector<RingTimes>& ranks, size_t i) {
  CriticalStep c;
  for (const RingTimes& r : ranks) {
    RW_CHECK(r.size() == ranks[0].size(), "ranks timed %zu and %zu ring steps", r.size(), ranks[0].size());
    c.step = std::max(c.step, r[i].step_s);
    c.compute = std::max(c.compute, r[i].compute_s);
    c.busy = std::max(c.busy, r[i].compute_s + r[i].wait_s);
  }
  c.step = std::max(c.step, c.busy);  // a rank's parts may round past its whole by a nanosecond
  return c;
}

double fraction_hidden(double exposed_s, double alone_s) {
  if (exposed_s == 0) return 1.0;
  return alone_s > 0 ? std::clamp(1.0 - exposed_s / alone_s, 0.0, 1.0) : 0.0;
}

}  // namespace

std::vector<RingTimes> gather_ring_times(const RingTimes& mine, Communicator& cp) {
  const int P = cp.size();
  double steps = static_cast<double>(mine.size()), most = steps;
  cp.allreduce(&most, 1, ReduceOp::Max);
  RW_CHECK(most == steps, "rank %d timed %zu ring steps, another rank %.0f", cp.rank(), mine.size(), most);
  std::vector<double> flat;
  for (const RingStepTime& t : mine) flat.insert(flat.end(), {t.step_s, t.compute_s, t.wait_s, t.sent_bytes});
  std::vector<double> all(flat.size() * P);
  cp.allgather(flat.data(), all.data(), flat.size());
  std::vector<RingTimes> ranks(P, RingTimes(mine.size()));
  for (int r = 0; r < P; ++r)
    for (size_t i = 0; i < mine.size(); ++i) {
      const double* f = all.data() + (r * mine.size() + i) * kFields;
      ranks[r][i] = {f[0], f[1], f[2], f[3]};
    }
  return ranks;
}

double RingOverlap::hidden() const { return sent_bytes == 0 ? 1.0 : fraction_hidden(exposed_s, alone_s); }

double RingOverlap::hidden_where_computing() const {
  return sent_bytes == 0 ? 1.0 : fraction_hidden(exposed_s - bare_exposed_s, alone_s - bare_alone_s);
}

RingOverlap ring_overlap(const std::vector<RingTimes>& run, const std::vector<RingTimes>& alone) {
  RW_CHECK(!run.empty() && run.size() == alone.size() && run[0].size() == alone[0].size(),
           "ring times of %zu ranks, %zu steps against transfers alone of %zu ranks, %zu steps", run.size(),
           run.empty() ? 0 : run[0].size(), alone.size(), alone.empty() ? 0 : alone[0].size());
  RingOverlap o;
  for (size_t i = 0; i < run[0].size(); ++i) {
    const CriticalStep c = critical_step(run, i), a = critical_step(alone, i);
    o.step_s += c.step;
    o.compute_s += c.compute;
    o.exposed_s += c.exposed();
    o.other_s += c.other();
    o.alone_s += a.exposed();
    if (c.compute == 0) o.bare_exposed_s += c.exposed(), o.bare_alone_s += a.exposed();
    o.sent_bytes += run[0][i].sent_bytes;
  }
  return o;
}

}  // namespace rw
