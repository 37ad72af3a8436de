// The accounting of `ringwise bench ring` (dist/ring_timing.h): hand-computed cases of the overlap
// arithmetic, and the step records ring attention writes on every rank of MPI_COMM_WORLD (ctest runs
// this as one process and under mpirun -np 2 and 4). No test compares a time with a constant: the
// records are checked against the ring's schedule (how many steps, how many bytes each sends) and
// against each other within one run, and timing must not change a single bit of the results.
#include <gtest/gtest.h>

#include <vector>

#include "core/ops.h"
#include "dist/communicator.h"
#include "dist/ring_attention.h"
#include "dist/ring_timing.h"
#include "tests/dist_attention_test_support.h"

namespace rw {
namespace {

using test::Floats;
using test::world;

// Two ranks, three steps. Step 0: rank 0 computes 100 ms and then waits 50 ms for rank 1, which
// computes 150 ms: the step is rank 1's computation, nothing is exposed, although rank 0 waited.
// Step 1: both finish computing and waiting at 190 ms, 40 ms after the slower computation (150 ms):
// 40 ms exposed; the step ends at 200 ms, 10 ms of neither. Step 2 computes nothing (a hop home):
// its longest wait, 30 ms, is exposed. The transfers alone wait max(30, 40) + max(60, 50) +
// max(20, 15) = 120 ms (their steps, 5 ms longer each, include the barrier).
TEST(RingOverlap, ASlowerNeighbourIsNotCommunication) {
  const std::vector<RingTimes> run = {{{0.150, 0.100, 0.050, 8}, {0.200, 0.120, 0.070, 8}, {0.030, 0, 0.030, 8}},
                                      {{0.150, 0.150, 0.000, 8}, {0.199, 0.150, 0.040, 8}, {0.025, 0, 0.020, 8}}};
  const std::vector<RingTimes> alone = {{{0.035, 0, 0.030, 8}, {0.065, 0, 0.060, 8}, {0.025, 0, 0.020, 8}},
                                        {{0.045, 0, 0.040, 8}, {0.055, 0, 0.050, 8}, {0.020, 0, 0.015, 8}}};
  const RingOverlap o = ring_overlap(run, alone);
  EXPECT_NEAR(o.step_s, 0.380, 1e-12);
  EXPECT_NEAR(o.compute_s, 0.300, 1e-12);
  EXPECT_NEAR(o.exposed_s, 0.070, 1e-12);
  EXPECT_NEAR(o.other_s, 0.010, 1e-12);
  EXPECT_NEAR(o.alone_s, 0.120, 1e-12);
  EXPECT_NEAR(o.bare_exposed_s, 0.030, 1e-12);
  EXPECT_NEAR(o.bare_alone_s, 0.020, 1e-12);
  EXPECT_EQ(o.sent_bytes, 24);
  EXPECT_NEAR(o.hidden(), 1 - 0.07 / 0.12, 1e-12);
  EXPECT_NEAR(o.hidden_where_computing(), 1 - 0.04 / 0.10, 1e-12);
}

TEST(RingOverlap, HiddenStaysBetweenNoneAndAll) {
  // More exposed than the transfers alone took (a slow run): none hidden, not a negative share.
  const std::vector<RingTimes> slow = {{{0.5, 0.1, 0.4, 8}}}, alone = {{{0.1, 0, 0.1, 8}}};
  EXPECT_DOUBLE_EQ(ring_overlap(slow, alone).hidden(), 0.0);
  // Nothing exposed: all hidden.
  const std::vector<RingTimes> covered = {{{0.5, 0.5, 0, 8}}};
  EXPECT_DOUBLE_EQ(ring_overlap(covered, alone).hidden(), 1.0);
  // Nothing sent (one rank): nothing to hide.
  const std::vector<RingTimes> single = {{{0.5, 0.4, 0, 0}}}, none = {{{0.0, 0, 0, 0}}};
  EXPECT_DOUBLE_EQ(ring_overlap(single, none).hidden(), 1.0);
}

// One rank's inputs of a small causal GQA attention and its outputs from one forward + backward.
struct RingRun {
  const test::AttentionReference ref{test::attention_shape(true, 4, 2, 20, 16), 81, world()};
  Floats out, lse, dq, dk, dv;
  RingTimes forward, backward;

  // `timed`: record the steps into forward and backward.
  RingRun(RingOptions opts, bool timed) {
    const Floats &q = ref.lq, &k = ref.lk, &v = ref.lv;
    const cpu::AttentionShape& s = ref.local;
    // Gradients start at 0.5, as the reference's do.
    out.resize(q.size()), lse.resize(ref.lse.size() / ref.P), dq.assign(q.size(), 0.5f), dk.assign(k.size(), 0.5f),
        dv.assign(k.size(), 0.5f);
    opts.times = timed ? &forward : nullptr;
    ring_attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), s, world(), opts);
    opts.times = timed ? &backward : nullptr;
    ring_attention_backward(dq.data(), dk.data(), dv.data(), ref.ldout.data(), q.data(), k.data(), v.data(),
                            out.data(), lse.data(), s, world(), opts);
  }
  // Bytes of one K/V message (and of one dK/dV accumulator): a rank's k and v.
  double kv_bytes() const { return 2.0 * ref.lk.size() * sizeof(float); }
  RingTimes both() const {
    RingTimes all = forward;
    all.insert(all.end(), backward.begin(), backward.end());
    return all;
  }
};

// Polling more or less often cuts the kernel calls along query rows: rows are independent, so the
// output and dQ keep every bit, while dK/dV sum the slices' contributions in another order.
TEST(RingTiming, PollingGranularityKeepsEveryQueryRowsBits) {
  const RingRun plain({}, false);
  for (int tiles : {1, 1000}) {
    RingOptions opts;
    opts.tiles_per_call = tiles;
    const RingRun sliced(opts, false);
    EXPECT_EQ(sliced.out, plain.out) << tiles << " tiles per call";
    EXPECT_EQ(sliced.lse, plain.lse) << tiles << " tiles per call";
    EXPECT_EQ(sliced.dq, plain.dq) << tiles << " tiles per call";
    sliced.ref.expect_matches(sliced.out, sliced.lse, sliced.dq, sliced.dk, sliced.dv);
  }
}

TEST(RingTiming, TimingChangesNoBit) {
  const RingRun plain({}, false), timed({}, true);
  EXPECT_EQ(timed.out, plain.out);
  EXPECT_EQ(timed.lse, plain.lse);
  EXPECT_EQ(timed.dq, plain.dq);
  EXPECT_EQ(timed.dk, plain.dk);
  EXPECT_EQ(timed.dv, plain.dv);
  plain.ref.expect_matches(plain.out, plain.lse, plain.dq, plain.dk, plain.dv);
}

// P forward steps, each but the last sending this rank's K/V on; P backward steps, each sending the
// dK/dV accumulator and all but the last the K/V block too; then the hop home, which sends nothing.
TEST(RingTiming, EveryRankRecordsEveryStepOfTheSchedule) {
  const RingRun r({}, true);
  const int P = world().size();
  const double kv = r.kv_bytes();
  ASSERT_EQ(r.forward.size(), static_cast<size_t>(P));
  ASSERT_EQ(r.backward.size(), static_cast<size_t>(P > 1 ? P + 1 : 1));
  for (int i = 0; i < P; ++i) {
    EXPECT_EQ(r.forward[i].sent_bytes, i + 1 < P ? kv : 0.0) << "forward step " << i;
    EXPECT_EQ(r.backward[i].sent_bytes, P == 1 ? 0.0 : i + 1 < P ? 2 * kv : kv) << "backward step " << i;
  }
  if (P > 1) {
    EXPECT_EQ(r.backward[P].sent_bytes, 0.0);
    EXPECT_EQ(r.backward[P].compute_s, 0.0) << "the hop home computes nothing";
  }
  // Computing and waiting are parts of the step (1 ns: the clock's resolution, not a speed).
  for (const RingStepTime& t : r.both()) {
    EXPECT_GE(t.compute_s, 0.0);
    EXPECT_GE(t.wait_s, 0.0);
    EXPECT_LE(t.compute_s + t.wait_s, t.step_s + 1e-9);
  }
}

TEST(RingTiming, GatherBringsEveryRanksRecords) {
  const RingRun r({}, true);
  const RingTimes mine = r.both();
  const std::vector<RingTimes> all = gather_ring_times(mine, world());
  ASSERT_EQ(all.size(), static_cast<size_t>(world().size()));
  for (const RingTimes& rank : all) EXPECT_EQ(rank.size(), mine.size());
  const RingTimes& back = all[world().rank()];
  for (size_t i = 0; i < mine.size(); ++i) {
    EXPECT_EQ(back[i].step_s, mine[i].step_s);
    EXPECT_EQ(back[i].compute_s, mine[i].compute_s);
    EXPECT_EQ(back[i].wait_s, mine[i].wait_s);
    EXPECT_EQ(back[i].sent_bytes, mine[i].sent_bytes);
  }
}

// The transfers alone compute nothing, so all their waiting is exposed: set against themselves,
// none of it is hidden. A real run's share lies between none and all, and its parts add up to its
// steps.
TEST(RingTiming, TransfersAloneAreAllExposed) {
  RingOptions only;
  only.transfers_only = true;
  const RingRun bare(only, true), full({}, true);
  for (const RingStepTime& t : bare.both()) EXPECT_EQ(t.compute_s, 0.0);
  const std::vector<RingTimes> alone = gather_ring_times(bare.both(), world());
  const RingOverlap self = ring_overlap(alone, alone);
  EXPECT_EQ(self.compute_s, 0.0);
  EXPECT_EQ(self.exposed_s, self.alone_s);
  EXPECT_EQ(self.hidden(), world().size() > 1 ? 0.0 : 1.0);

  const RingOverlap o = ring_overlap(gather_ring_times(full.both(), world()), alone);
  EXPECT_GE(o.hidden(), 0.0);
  EXPECT_LE(o.hidden(), 1.0);
  EXPECT_GE(o.exposed_s, 0.0);
  EXPECT_GE(o.other_s, 0.0);
  EXPECT_NEAR(o.compute_s + o.exposed_s + o.other_s, o.step_s, 1e-9 * full.both().size());
  EXPECT_EQ(o.sent_bytes, world().size() > 1 ? (3 * world().size() - 2) * full.kv_bytes() : 0.0);
}

}  // namespace
}  // namespace rw
