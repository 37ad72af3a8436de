#include "dist/process_grid.h"

#include "core/check.h"
#include "dist/mpi_runtime.h"

namespace rw {
namespace {

constexpr GridAxis kAxes[] = {GridAxis::Dp, GridAxis::Tp, GridAxis::Cp, GridAxis::Ep};

int& coord_along(GridCoord& c, GridAxis axis) {
  switch (axis) {
    case GridAxis::Dp: return c.dp;
    case GridAxis::Tp: return c.tp;
    case GridAxis::Cp: return c.cp;
    case GridAxis::Ep: return c.ep;
  }
  return c.dp;
}

int size_along(const GridSizes& s, GridAxis axis) {
  switch (axis) {
    case GridAxis::Dp: return s.dp;
    case GridAxis::Tp: return s.tp;
    case GridAxis::Cp: return s.cp;
    case GridAxis::Ep: return s.ep;
  }
  return s.dp;
}

}  // namespace

GridCoord grid_coord(const GridSizes& s, int world_rank) {
  GridCoord c;
  c.tp = world_rank % s.tp;
  world_rank /= s.tp;
  c.cp = world_rank % s.cp;
  world_rank /= s.cp;
  c.ep = world_rank % s.ep;
  c.dp = world_rank / s.ep;
  return c;
}

int grid_rank(const GridSizes& s, const GridCoord& c) { return c.tp + s.tp * (c.cp + s.cp * (c.ep + s.ep * c.dp)); }

std::vector<int> grid_group(const GridSizes& s, int world_rank, GridAxis axis) {
  GridCoord c = grid_coord(s, world_rank);
  std::vector<int> ranks;
  for (int i = 0; i < size_along(s, axis); ++i) {
    coord_along(c, axis) = i;
    ranks.push_back(grid_rank(s, c));
  }
  return ranks;
}

ProcessGrid::ProcessGrid(std::unique_ptr<Communicator> world, const GridSizes& sizes)
    : sizes_(sizes), world_(std::move(world)) {
  RW_USER_CHECK(sizes.dp >= 1 && sizes.tp >= 1 && sizes.cp >= 1 && sizes.ep >= 1,
                "--dp %d, --tp %d, --cp %d and --ep %d must all be at least 1", sizes.dp, sizes.tp, sizes.cp, sizes.ep);
  RW_USER_CHECK(sizes.product() == world_->size(), "dp*tp*cp*ep = %d but mpirun started %d ranks%s", sizes.product(),
                world_->size(), world_->size() == 1 ? " (run it under mpirun -np N)" : "");
  coord_ = grid_coord(sizes, world_->rank());
  // Every rank walks the axes in the same order; a group's color is its first member, its key the
  // position along the axis.
  for (GridAxis axis : kAxes) {
    GridCoord c = coord_;
    coord_along(c, axis) = 0;
    groups_[static_cast<int>(axis)] = world_->split(grid_rank(sizes, c), coord_along(coord_, axis));
  }
}

ProcessGrid ProcessGrid::create(const GridSizes& sizes) {
  return ProcessGrid(mpi_initialized() ? make_mpi_world() : make_single(), sizes);
}

}  // namespace rw
