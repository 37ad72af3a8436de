// Shared by the distributed attention tests (ring, Ulysses): the world communicator, seeded
// inputs, a rank's part of a full tensor, the single-process reference and the relative-error
// comparison against it.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/ops.h"
#include "core/random.h"
#include "dist/communicator.h"
#include "dist/zigzag.h"
#include "tests/numeric_test_support.h"

namespace rw::test {

using Floats = std::vector<float>;

// max |got - reference| / max |reference| allowed per tensor.
constexpr double kTol = 1e-5;

// MPI is initialised by tests/dist_test_main.cpp.
inline Communicator& world() {
  static std::unique_ptr<Communicator> comm = make_mpi_world();
  return *comm;
}

inline Floats randn(size_t n, uint64_t seed) {
  Rng rng(seed);
  Floats x(n);
  for (float& v : x) v = rng.normal();
  return x;
}

// Rank r's part of a [B, T, row] tensor under the layout the mask implies.
inline Floats local_part(const Floats& full, int B, int T, size_t row, bool causal, int P, int r) {
  Floats local(full.size() / P);
  if (causal) {
    zigzag_scatter(local.data(), full.data(), B, T, row, P, r);
  } else {
    const size_t part = static_cast<size_t>(T / P) * row;
    for (size_t b = 0; b < static_cast<size_t>(B); ++b)
      std::memcpy(local.data() + b * part, full.data() + (b * P + r) * part, part * sizeof(float));
  }
  return local;
}

inline void expect_close(const Floats& got, const Floats& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  EXPECT_LE(relative_error(got.data(), want.data(), got.size()), kTol)
      << what << " on rank " << world().rank() << " of " << world().size();
}

// B = 2 sequences of 2P * `chunk` tokens (zigzag chunks of `chunk`), H query and KH kv heads of
// dimension D, under 3-query, 16-key kernel tiles.
inline cpu::AttentionShape attention_shape(bool causal, int H, int KH, int chunk, int D) {
  cpu::AttentionShape s;
  s.B = 2;
  s.Tq = s.Tk = 2 * world().size() * chunk;
  s.H = H;
  s.KH = KH;
  s.D = D;
  s.causal = causal;
  s.block_q = 3;
  s.block_k = 16;
  return s;
}

// Seeded full inputs over the global shape `g`, the single-process kernel's forward and backward
// on them, and this rank's parts of the inputs (zigzag for causal, contiguous otherwise).
struct AttentionReference {
  cpu::AttentionShape g, local;  // the global shape, and one rank's (T / P tokens)
  int P, r;
  size_t qrow, kvrow;
  Floats q, k, v, dout, out, lse, dq, dk, dv;
  Floats lq, lk, lv, ldout;

  AttentionReference(const cpu::AttentionShape& shape, uint64_t seed, Communicator& cp)
      : g(shape), local(shape), P(cp.size()), r(cp.rank()) {
    const int T = g.Tq;
    qrow = static_cast<size_t>(g.H) * g.D;
    kvrow = static_cast<size_t>(g.KH) * g.D;
    const size_t nq = g.B * T * qrow, nkv = g.B * T * kvrow;
    q = randn(nq, seed), k = randn(nkv, seed + 1), v = randn(nkv, seed + 2), dout = randn(nq, seed + 3);
    // Gradients start at 0.5, not 0, to check that both sides accumulate.
    out = Floats(nq), lse = Floats(static_cast<size_t>(g.B) * g.H * T);
    dq = Floats(nq, 0.5f), dk = Floats(nkv, 0.5f), dv = Floats(nkv, 0.5f);
    cpu::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), g);
    cpu::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(), v.data(), out.data(),
                            lse.data(), g);
    lq = part(q, qrow), lk = part(k, kvrow), lv = part(v, kvrow), ldout = part(dout, qrow);
    local.Tq = local.Tk = T / P;
  }
  Floats part(const Floats& x, size_t row) const { return local_part(x, g.B, g.Tq, row, g.causal, P, r); }

  // This rank's out, lse, dq, dk and dv (gradients started at 0.5) against its parts of the reference.
  void expect_matches(const Floats& lout, const Floats& llse, const Floats& ldq, const Floats& ldk,
                      const Floats& ldv) const {
    expect_close(lout, part(out, qrow), "out");
    // lse is [B, H, T]: B * H rows of T tokens with one element each.
    expect_close(llse, local_part(lse, g.B * g.H, g.Tq, 1, g.causal, P, r), "lse");
    expect_close(ldq, part(dq, qrow), "dq");
    expect_close(ldk, part(dk, kvrow), "dk");
    expect_close(ldv, part(dv, kvrow), "dv");
  }
};

}  // namespace rw::test
