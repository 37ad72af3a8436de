// The zigzag layout against its definition written out here: rank r holds chunks r and 2P-1-r of
// 2P, every token lives on exactly one rank, and scatter then gather gives the sequence back.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "core/check.h"
#include "dist/zigzag.h"

namespace rw {
namespace {

TEST(Zigzag, PositionsOfTwoRanksHandWritten) {
  EXPECT_EQ(zigzag_positions(16, 2, 0), (std::vector<int32_t>{0, 1, 2, 3, 12, 13, 14, 15}));
  EXPECT_EQ(zigzag_positions(16, 2, 1), (std::vector<int32_t>{4, 5, 6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(zigzag_positions(8, 1, 0), (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(Zigzag, EveryTokenOnExactlyOneRank) {
  for (int P : {1, 2, 3, 4, 8}) {
    const int T = 2 * P * 5;
    std::vector<int32_t> all;
    for (int r = 0; r < P; ++r) {
      const std::vector<int32_t> pos = zigzag_positions(T, P, r);
      ASSERT_EQ(static_cast<int>(pos.size()), T / P);
      all.insert(all.end(), pos.begin(), pos.end());
    }
    std::sort(all.begin(), all.end());
    std::vector<int32_t> want(T);
    std::iota(want.begin(), want.end(), 0);
    EXPECT_EQ(all, want) << "P=" << P;
  }
}

TEST(Zigzag, ScatterPicksEachTokensRowAndGatherRestoresTheSequence) {
  const int B = 2, row = 3;
  for (int P : {1, 2, 4}) {
    const int T = 2 * P * 3;
    std::vector<int> full(static_cast<size_t>(B) * T * row);
    std::iota(full.begin(), full.end(), 100);
    std::vector<int> back(full.size(), -1);
    for (int r = 0; r < P; ++r) {
      std::vector<int> local(full.size() / P);
      zigzag_scatter(local.data(), full.data(), B, T, row, P, r);
      const std::vector<int32_t> pos = zigzag_positions(T, P, r);
      for (int b = 0; b < B; ++b)
        for (int t = 0; t < T / P; ++t)
          for (int e = 0; e < row; ++e)
            ASSERT_EQ(local[(b * (T / P) + t) * row + e], full[(b * T + pos[t]) * row + e])
                << "P=" << P << " rank " << r << " b " << b << " t " << t;
      zigzag_gather(back.data(), local.data(), B, T, row, P, r);
    }
    EXPECT_EQ(back, full) << "P=" << P;
  }
}

TEST(Zigzag, SequenceNotDivisibleByTwiceCpIsAUserErrorNamingBoth) {
  EXPECT_NO_THROW(check_zigzag(12, 3));
  try {
    check_zigzag(10, 2);
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--seq-len 10"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--cp"), std::string::npos) << msg;
  }
  EXPECT_THROW(check_zigzag(8, 0), UserError);
}

}  // namespace
}  // namespace rw
