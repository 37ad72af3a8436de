// Ring attention on every rank of MPI_COMM_WORLD (ctest runs this under mpirun -np 2 and 4, and
// plain for one rank) against the single-process kernel on the full sequence: every rank draws the
// same seeded full inputs, computes the whole reference itself, and compares its own part
// (zigzag for causal, contiguous for non-causal) of out, lse, dq, dk and dv.
//
// Tolerance: max |ring - reference| / max |reference| <= 1e-5 per tensor. Both sides run the
// same float kernel on N(0, 1) inputs; the ring only regroups the online softmax's key blocks
// (chunk boundaries instead of tile boundaries) and adds one rescaling merge per step, each a
// rounding of about 6e-8 relative, so honest differences stay near 1e-6 whatever P is, while a
// missing block, a wrong mask or a lost gradient hop is off by O(0.1).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "core/ops.h"
#include "dist/communicator.h"
#include "dist/ring_attention.h"
#include "tests/dist_attention_test_support.h"

namespace rw {
namespace {

using cpu::AttentionShape;
using test::Floats;
using test::randn;
using test::world;

// Forward and backward over the full sequence T (global shape `g`), ring against reference.
void check_ring(AttentionShape g, uint64_t seed, RingProgress progress = RingProgress::Poll) {
  Communicator& cp = world();
  const int P = cp.size();
  ASSERT_EQ(g.Tq % (2 * P), 0);
  const test::AttentionReference ref(g, seed, cp);
  const Floats &lq = ref.lq, &lk = ref.lk, &lv = ref.lv, &ldout = ref.ldout;
  const AttentionShape& s = ref.local;
  Floats rout(lq.size()), rlse(ref.lse.size() / P), rdq(lq.size(), 0.5f), rdk(lk.size(), 0.5f), rdv(lk.size(), 0.5f);
  RingOptions opts;
  opts.progress = progress;
  ring_attention_forward(rout.data(), rlse.data(), lq.data(), lk.data(), lv.data(), s, cp, opts);
  ring_attention_backward(rdq.data(), rdk.data(), rdv.data(), ldout.data(), lq.data(), lk.data(), lv.data(),
                          rout.data(), rlse.data(), s, cp, opts);

  ref.expect_matches(rout, rlse, rdq, rdk, rdv);
}

// Sequence lengths are 2P * 20 tokens: a zigzag chunk of 20 (and a contiguous part of 40) is not
// a whole number of the 3-query, 16-key tiles, nor of the ring's 12-row kernel calls.
AttentionShape shape(bool causal, int H, int KH) { return test::attention_shape(causal, H, KH, 20, 16); }

TEST(RingAttention, CausalZigzagMatchesFullAttention) { check_ring(shape(true, 2, 2), 11); }
TEST(RingAttention, CausalZigzagGqaMatchesFullAttention) { check_ring(shape(true, 4, 2), 21); }
TEST(RingAttention, NonCausalContiguousMatchesFullAttention) { check_ring(shape(false, 2, 2), 31); }
TEST(RingAttention, NonCausalContiguousGqaMatchesFullAttention) { check_ring(shape(false, 6, 2), 41); }
TEST(RingAttention, OneRankIsExactlyTheLocalKernel) {
  std::unique_ptr<Communicator> single = make_single();
  for (bool causal : {true, false}) {
    AttentionShape s = shape(causal, 4, 2);
    s.Tq = s.Tk = 40;
    const size_t nq = static_cast<size_t>(s.B) * s.Tq * s.H * s.D, nkv = static_cast<size_t>(s.B) * s.Tk * s.KH * s.D;
    const Floats q = randn(nq, 71), k = randn(nkv, 72), v = randn(nkv, 73), dout = randn(nq, 74);
    Floats out(nq), lse(static_cast<size_t>(s.B) * s.H * s.Tq), dq(nq), dk(nkv), dv(nkv);
    Floats rout(out), rlse(lse), rdq(dq), rdk(dk), rdv(dv);
    cpu::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), s);
    cpu::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(), out.data(),
                            lse.data(), s);
    ring_attention_forward(rout.data(), rlse.data(), q.data(), k.data(), v.data(), s, *single);
    ring_attention_backward(rdq.data(), rdk.data(), rdv.data(), dout.data(), q.data(), k.data(), v.data(),
                            rout.data(), rlse.data(), s, *single);
    EXPECT_EQ(rout, out);
    EXPECT_EQ(rlse, lse);
    EXPECT_EQ(rdq, dq);
    EXPECT_EQ(rdk, dk);
    EXPECT_EQ(rdv, dv);
  }
}

TEST(RingAttention, CommunicationThreadGivesTheSameResult) {
  check_ring(shape(true, 4, 2), 51, RingProgress::Thread);
  check_ring(shape(false, 4, 1), 61, RingProgress::Thread);
}

}  // namespace
}  // namespace rw
