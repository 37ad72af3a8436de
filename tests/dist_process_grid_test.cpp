// The rank layout as a pure function (large worlds, no MPI), then the groups a real world builds.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "core/check.h"
#include "dist/process_grid.h"

namespace rw {
namespace {

constexpr GridAxis kAxes[] = {GridAxis::Dp, GridAxis::Tp, GridAxis::Cp, GridAxis::Ep};

TEST(GridLayout, TpFastestThenCpEpDp) {
  const GridSizes s{3, 2, 4, 5};  // dp, tp, cp, ep: 120 ranks
  for (int r = 0; r < s.product(); ++r) {
    const GridCoord c = grid_coord(s, r);
    // Written out independently of grid_rank: tp varies fastest, dp slowest.
    EXPECT_EQ(r, c.tp + 2 * c.cp + 2 * 4 * c.ep + 2 * 4 * 5 * c.dp);
    EXPECT_EQ(grid_rank(s, c), r);
  }
  EXPECT_EQ(grid_group(s, 0, GridAxis::Tp), (std::vector<int>{0, 1}));
  EXPECT_EQ(grid_group(s, 1, GridAxis::Dp), (std::vector<int>{1, 41, 81}));
  EXPECT_EQ(grid_group(s, 3, GridAxis::Cp), (std::vector<int>{1, 3, 5, 7}));
}

// Along every axis the groups partition the world, and each group has the axis' size.
TEST(GridLayout, GroupsPartitionTheWorld) {
  const GridSizes s{4, 2, 2, 3};
  for (GridAxis axis : kAxes) {
    std::set<int> seen;
    std::set<std::vector<int>> groups;
    for (int r = 0; r < s.product(); ++r) {
      std::vector<int> g = grid_group(s, r, axis);
      EXPECT_EQ(std::count(g.begin(), g.end(), r), 1);
      groups.insert(g);
    }
    for (const auto& g : groups) seen.insert(g.begin(), g.end());
    EXPECT_EQ(static_cast<int>(seen.size()), s.product());
    size_t members = 0;
    for (const auto& g : groups) members += g.size();
    EXPECT_EQ(static_cast<int>(members), s.product());
  }
}

TEST(ProcessGrid, WrongProductIsAUserError) {
  const int n = make_mpi_world()->size();
  try {
    ProcessGrid grid(make_mpi_world(), GridSizes{n, 2, 1, 1});
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(format("dp*tp*cp*ep = %d but mpirun started %d ranks", 2 * n, n)),
              std::string::npos)
        << e.what();
  }
}

// Each group's allreduce of the world ranks equals the sum over the ranks the layout predicts.
TEST(ProcessGrid, GroupsMatchTheLayout) {
  std::unique_ptr<Communicator> world = make_mpi_world();
  const int n = world->size(), me = world->rank();
  const GridSizes s = n % 2 == 0 ? GridSizes{n / 2, 2, 1, 1} : GridSizes{n, 1, 1, 1};
  ProcessGrid grid(std::move(world), s);
  for (GridAxis axis : kAxes) {
    const std::vector<int> expected = grid_group(s, me, axis);
    Communicator& g = grid.group(axis);
    ASSERT_EQ(g.size(), static_cast<int>(expected.size()));
    EXPECT_EQ(expected[g.rank()], me);
    double sum = me;
    g.allreduce(&sum, 1);
    EXPECT_EQ(sum, std::accumulate(expected.begin(), expected.end(), 0.0));
  }
}

TEST(ProcessGrid, SingleProcessNeedsNoMpi) {
  ProcessGrid grid(make_single(), GridSizes{});
  EXPECT_EQ(grid.dp().size(), 1);
  EXPECT_EQ(grid.tp().size(), 1);
  EXPECT_THROW(ProcessGrid(make_single(), GridSizes{2, 1, 1, 1}), UserError);
}

}  // namespace
}  // namespace rw
