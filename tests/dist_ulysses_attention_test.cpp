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
using test::Floats;
using test::world;

// Sequence length 2P * 10: zigzag chunks of 10 tokens, not whole 3-query or 16-key tiles.
AttentionShape shape(bool causal, int H, int KH) { return test::attention_shape(causal, H, KH, 10, 8); }

void check_ulysses_attention(const AttentionShape& g, uint64_t seed) {
  Communicator& cp = world();
  const test::AttentionReference ref(g, seed, cp);
  const Floats &lq = ref.lq, &lk = ref.lk, &lv = ref.lv, &ldout = ref.ldout;
  const AttentionShape& s = ref.local;
  Floats uout(lq.size()), ulse(ref.lse.size() / cp.size()), udq(lq.size(), 0.5f), udk(lk.size(), 0.5f),
      udv(lk.size(), 0.5f);
  ulysses_attention_forward(uout.data(), ulse.data(), lq.data(), lk.data(), lv.data(), s, cp);
  ulysses_attention_backward(udq.data(), udk.data(), udv.data(), ldout.data(), lq.data(), lk.data(), lv.data(),
                             uout.data(), ulse.data(), s, cp);

  ref.expect_matches(uout, ulse, udq, udk, udv);
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
