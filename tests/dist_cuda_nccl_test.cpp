// The NCCL communicator. At world size 1 (bootstrapped by the single-rank communicator) every
// collective must reduce to a copy; across the MPI world, when there is a GPU per rank, each
// collective is checked against sums computed here from the rank numbers. Skipped with the reason
// when there is no GPU, too few GPUs, or no NCCL in the build.
#include <gtest/gtest.h>

#include <vector>

#include "dist/communicator.h"
#include "tests/cuda_test_support.h"

#if RINGWISE_HAVE_NCCL
#include "dist/nccl_communicator.h"
#endif

namespace rw {
namespace {

using test::DeviceVec;
using Floats = std::vector<float>;

#if RINGWISE_HAVE_NCCL

Floats iota(size_t n, float start) {
  Floats x(n);
  for (size_t i = 0; i < n; ++i) x[i] = start + static_cast<float>(i);
  return x;
}

TEST(NcclCommunicator, WorldSizeOneCollectivesAreCopies) {
  if (!test::have_cuda_device()) GTEST_SKIP() << "no CUDA device";
  std::unique_ptr<Communicator> single = make_single();
  std::unique_ptr<Communicator> nccl = make_nccl(*single);
  ASSERT_EQ(nccl->rank(), 0);
  ASSERT_EQ(nccl->size(), 1);
  const Floats x = iota(100, 1.0f);

  DeviceVec<float> sum(x), max(x);
  nccl->allreduce(sum.get(), x.size());
  nccl->allreduce(max.get(), x.size(), ReduceOp::Max);
  EXPECT_EQ(sum.host(), x);
  EXPECT_EQ(max.host(), x);
  const std::vector<double> xd(x.begin(), x.end());
  DeviceVec<double> dsum(xd), dgathered(std::vector<double>(xd.size()));
  nccl->allreduce(dsum.get(), xd.size());
  EXPECT_EQ(dsum.host(), xd);
  nccl->allgather(dsum.get(), dgathered.get(), xd.size());
  EXPECT_EQ(dgathered.host(), xd);

  DeviceVec<float> in(x), out(Floats(x.size())), async(x);
  nccl->reduce_scatter(in.get(), out.get(), x.size());
  EXPECT_EQ(out.host(), x);
  nccl->allgather(in.get(), out.get(), x.size());
  EXPECT_EQ(out.host(), x);
  nccl->broadcast(in.get(), x.size() * sizeof(float), 0);
  EXPECT_EQ(in.host(), x);
  nccl->iallreduce(async.get(), x.size())->wait();
  EXPECT_EQ(async.host(), x);

  DeviceVec<float> ring_in(x), ring_out(Floats(x.size()));
  std::unique_ptr<Request> req = nccl->isendrecv(ring_in.get(), x.size(), 0, ring_out.get(), x.size(), 0, 7);
  req->wait();
  EXPECT_TRUE(req->test());
  EXPECT_EQ(ring_out.host(), x);

  const int counts[1] = {static_cast<int>(x.size())};
  DeviceVec<float> a2a(Floats(x.size()));
  nccl->alltoallv(in.get(), counts, a2a.get(), counts);
  EXPECT_EQ(a2a.host(), x);
  nccl->barrier();

  std::unique_ptr<Communicator> sub = nccl->split(0, 0);
  EXPECT_EQ(sub->size(), 1);
  DeviceVec<float> sub_sum(x);
  sub->allreduce(sub_sum.get(), x.size());
  EXPECT_EQ(sub_sum.host(), x);
}

TEST(NcclCommunicator, WorldCollectivesMatchSumsOverRanks) {
  if (!test::have_cuda_device()) GTEST_SKIP() << "no CUDA device";
  std::unique_ptr<Communicator> world = make_mpi_world();
  int devices = 0;
  ASSERT_EQ(cudaGetDeviceCount(&devices), cudaSuccess);
  if (world->size() < 2) GTEST_SKIP() << "one rank: covered by the world-size-one test";
  if (devices < world->size()) GTEST_SKIP() << "NCCL needs a GPU per rank: " << devices << " GPUs for "
                                            << world->size() << " ranks";
  ASSERT_EQ(cudaSetDevice(world->rank()), cudaSuccess);
  std::unique_ptr<Communicator> nccl = make_nccl(*world);
  const int P = world->size(), r = world->rank();
  const size_t n = 64;

  DeviceVec<float> sum(Floats(n, static_cast<float>(r + 1)));
  nccl->allreduce(sum.get(), n);
  EXPECT_EQ(sum.host(), Floats(n, static_cast<float>(P * (P + 1) / 2)));

  DeviceVec<float> mine(Floats(n, static_cast<float>(r))), gathered(Floats(n * P));
  nccl->allgather(mine.get(), gathered.get(), n);
  Floats expect_gathered;
  for (int q = 0; q < P; ++q) expect_gathered.insert(expect_gathered.end(), n, static_cast<float>(q));
  EXPECT_EQ(gathered.host(), expect_gathered);

  // Every rank sends its slice q filled with r + q; rank q receives sum over r of (r + q).
  Floats slices;
  for (int q = 0; q < P; ++q) slices.insert(slices.end(), n, static_cast<float>(r + q));
  DeviceVec<float> scatter_in(slices), scatter_out{Floats(n)};
  nccl->reduce_scatter(scatter_in.get(), scatter_out.get(), n);
  EXPECT_EQ(scatter_out.host(), Floats(n, static_cast<float>(P * (P - 1) / 2 + P * r)));

  DeviceVec<float> ring_in(Floats(n, static_cast<float>(r))), ring_out{Floats(n)};
  nccl->isendrecv(ring_in.get(), n, (r + 1) % P, ring_out.get(), n, (r + P - 1) % P, 0)->wait();
  EXPECT_EQ(ring_out.host(), Floats(n, static_cast<float>((r + P - 1) % P)));
}

#else

TEST(NcclCommunicator, NotBuilt) { GTEST_SKIP() << "built without NCCL (nccl.h or libnccl not found)"; }

#endif

}  // namespace
}  // namespace rw
