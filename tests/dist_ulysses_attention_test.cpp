// Ulysses attention on every rank of MPI_COMM_WORLD (ctest runs this plain, under mpirun -np 2 and
// -np 4) against the single-process kernel on the full sequence: every rank draws the same seeded
// full inputs, computes the whole reference itself, and compares its own part (zigzag for causal,
// contiguous for non-causal) of out, lse, dq, dk and dv.
//
// Tolerance: max |ulysses - reference| / max |reference| <= 1e-5 per tensor. Each rank runs the
// same kernel on the same rows of its heads, so only the key-tile boundaries could differ (none
// do: the sequence is whole); a token put at the wrong position, a head sent to the wrong rank or
// a lost gradient is off by O(0.1).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/ops.h"
#include "dist/communicator.h"
#include "dist/ulysses_attention.h"
#include "tests/dist_attention_test_support.h"

namespace rw {
namespace {

using cpu::AttentionShape;
using test::expect_close;
using test::Floats;
using test::local_part;
using test::randn;
using test::world;

// Sequence length 2P * 10: zigzag chunks of 10 tokens, not whole 3-query or 16-key tiles.
AttentionShape shape(bool causal, int H, int KH) {
  AttentionShape s;
  s.B = 2;
  s.Tq = s.Tk = 2 * world().size() * 10;
  s.H = H;
  s.KH = KH;
  s.D = 8;
  s.causal = causal;
  s.block_q = 3;
  s.block_k = 16;
  return s;
}

void check_ulysses_attention(const AttentionShape& g, uint64_t seed) {
  Communicator& cp = world();
  const int P = cp.size(), r = cp.rank(), T = g.Tq;
  const size_t qrow = static_cast<size_t>(g.H) * g.D, kvrow = static_cast<size_t>(g.KH) * g.D;
  const size_t nq = g.B * T * qrow, nkv = g.B * T * kvrow;
  const Floats q = randn(nq, seed), k = randn(nkv, seed + 1), v = randn(nkv, seed + 2), dout = randn(nq, seed + 3);

  // Gradients start at 0.5, not 0, to check that both sides accumulate.
  Floats out(nq), lse(static_cast<size_t>(g.B) * g.H * T), dq(nq, 0.5f), dk(nkv, 0.5f), dv(nkv, 0.5f);
  cpu::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), g);
  cpu::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(), out.data(),
                          lse.data(), g);

  auto part = [&](const Floats& x, size_t row) { return local_part(x, g.B, T, row, g.causal, P, r); };
  const Floats lq = part(q, qrow), lk = part(k, kvrow), lv = part(v, kvrow), ldout = part(dout, qrow);
  AttentionShape s = g;
  s.Tq = s.Tk = T / P;
  Floats uout(lq.size()), ulse(lse.size() / P), udq(lq.size(), 0.5f), udk(lk.size(), 0.5f), udv(lk.size(), 0.5f);
  ulysses_attention_forward(uout.data(), ulse.data(), lq.data(), lk.data(), lv.data(), s, cp);
  ulysses_attention_backward(udq.data(), udk.data(), udv.data(), ldout.data(), lq.data(), lk.data(), lv.data(),
                             uout.data(), ulse.data(), s, cp);

  expect_close(uout, part(out, qrow), "out");
  expect_close(ulse, local_part(lse, g.B * g.H, T, 1, g.causal, P, r), "lse");
  expect_close(udq, part(dq, qrow), "dq");
  expect_close(udk, part(dk, kvrow), "dk");
  expect_close(udv, part(dv, kvrow), "dv");
}

// Head counts divisible by 4, so the same cases run on 1, 2 and 4 ranks.
TEST(UlyssesAttention, CausalZigzagMatchesFullAttention) { check_ulysses_attention(shape(true, 4, 4), 11); }
TEST(UlyssesAttention, CausalZigzagGqaMatchesFullAttention) { check_ulysses_attention(shape(true, 8, 4), 21); }
TEST(UlyssesAttention, NonCausalContiguousMatchesFullAttention) { check_ulysses_attention(shape(false, 4, 4), 31); }
TEST(UlyssesAttention, NonCausalContiguousGqaMatchesFullAttention) { check_ulysses_attention(shape(false, 8, 4), 41); }

TEST(UlyssesAttention, HeadsTheRanksCannotShareAreAUserError) {
  EXPECT_NO_THROW(check_ulysses(8, 4, 4));
  try {
    check_ulysses(6, 2, 4);
    FAIL() << "6 heads over 4 ranks was accepted";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--heads 6"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--kv-heads 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--cp 4"), std::string::npos) << msg;
  }
  EXPECT_THROW(check_ulysses(8, 2, 4), UserError);  // the kv heads too
}

}  // namespace
}  // namespace rw
