// The process grid: every rank's place along the data (dp), tensor (tp), context (cp) and expert
// (ep) parallel axes, and one communicator per axis, built once.
//
// Rank order "tp-cp-ep-dp", tp fastest (Megatron style, so a tp group sits on neighbouring ranks,
// inside a node):   world_rank = tp_r + tp * (cp_r + cp * (ep_r + ep * dp_r))
// e.g. dp=2, tp=2: ranks 0,1 form tp group 0 and ranks 2,3 tp group 1; ranks 0,2 and 1,3 are the
// dp groups. The layout is a pure function (grid_coord, grid_group), testable without MPI.
#pragma once
#include <memory>
#include <vector>

#include "dist/communicator.h"

namespace rw {

struct GridSizes {
  int dp = 1, tp = 1, cp = 1, ep = 1;
  int product() const { return dp * tp * cp * ep; }
};

struct GridCoord {
  int dp = 0, tp = 0, cp = 0, ep = 0;
};

enum class GridAxis { Dp, Tp, Cp, Ep };

GridCoord grid_coord(const GridSizes& sizes, int world_rank);
int grid_rank(const GridSizes& sizes, const GridCoord& coord);
// The world ranks of `world_rank`'s group along `axis`, in group-rank order.
std::vector<int> grid_group(const GridSizes& sizes, int world_rank, GridAxis axis);

class ProcessGrid {
 public:
  // UserError "dp*tp*cp*ep = X but mpirun started Y ranks" when the sizes do not fill the world.
  // Every rank must construct its grid at the same point: the groups are made collectively.
  ProcessGrid(std::unique_ptr<Communicator> world, const GridSizes& sizes);
  // Over MPI_COMM_WORLD when MPI is initialised, else over the single process.
  static ProcessGrid create(const GridSizes& sizes);

  const GridSizes& sizes() const { return sizes_; }
  const GridCoord& coord() const { return coord_; }
  Communicator& world() { return *world_; }
  Communicator& group(GridAxis axis) { return *groups_[static_cast<int>(axis)]; }
  Communicator& dp() { return group(GridAxis::Dp); }
  Communicator& tp() { return group(GridAxis::Tp); }
  Communicator& cp() { return group(GridAxis::Cp); }
  Communicator& ep() { return group(GridAxis::Ep); }

 private:
  GridSizes sizes_;
  GridCoord coord_;
  std::unique_ptr<Communicator> world_;
  std::unique_ptr<Communicator> groups_[4];  // indexed by GridAxis
};

}  // namespace rw
