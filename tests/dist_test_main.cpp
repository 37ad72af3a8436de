// main() of every tests/dist_*_test.cpp binary, run as one process or under mpirun. Rank 0 prints
// the usual GoogleTest report; the other ranks print only their failures, prefixed with the rank;
// the exit code is non-zero on every rank when any rank failed a test.
#include <gtest/gtest.h>

#include <cstdio>

#include "dist/mpi_runtime.h"

namespace {

class RankFailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.summary());
  }

 private:
  int rank_;
};

}  // namespace

int main(int argc, char** argv) {
  rw::mpi_init(&argc, &argv);
  testing::InitGoogleTest(&argc, argv);
  const int rank = rw::world_rank();
  if (rank != 0) {
    testing::TestEventListeners& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rank));
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  const int mine = failed;
  RW_MPI_CHECK(MPI_Allreduce(&mine, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  if (rank == 0 && failed && !mine) std::fprintf(stderr, "FAILED on another rank (see the [rank N] lines above)\n");
  return failed;
}
