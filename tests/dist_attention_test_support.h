// Shared by the distributed attention tests (ring, Ulysses): the world communicator, seeded
// inputs, a rank's part of a full tensor and the relative-error comparison against the reference.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/random.h"
#include "dist/communicator.h"
#include "dist/zigzag.h"

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
  double err = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
  }
  EXPECT_LE(err / scale, kTol) << what << ": max error " << err << ", max |reference| " << scale << " on rank "
                               << world().rank() << " of " << world().size();
}

}  // namespace rw::test
