// Every Communicator call on MPI_COMM_WORLD (1, 2 or 4 ranks, see tests/CMakeLists.txt) and on the
// single-rank backend, against values each rank computes by hand from the rank numbers.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "dist/communicator.h"
#include "dist/mpi_runtime.h"

namespace rw {
namespace {

struct World : testing::Test {
  std::unique_ptr<Communicator> comm = make_mpi_world();
  int me = comm->rank(), n = comm->size();
  int rank_sum() const { return n * (n - 1) / 2; }
};

TEST_F(World, MatchesMpiRuntime) {
  EXPECT_EQ(me, world_rank());
  EXPECT_EQ(n, world_size());
}

TEST_F(World, AllreduceSumAndMax) {
  std::vector<float> f(5);
  std::vector<double> d(5);
  for (int i = 0; i < 5; ++i) f[i] = d[i] = me * 10 + i;
  comm->allreduce(f.data(), f.size());
  comm->allreduce(d.data(), d.size());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(f[i], 10 * rank_sum() + n * i);
    EXPECT_EQ(d[i], 10 * rank_sum() + n * i);
  }
  for (int i = 0; i < 5; ++i) f[i] = me * 10 + i;
  comm->allreduce(f.data(), f.size(), ReduceOp::Max);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(f[i], (n - 1) * 10 + i);
}

TEST_F(World, IallreduceCompletesAfterWait) {
  std::vector<float> f(1000);
  for (int i = 0; i < 1000; ++i) f[i] = me + i;
  std::unique_ptr<Request> req = comm->iallreduce(f.data(), f.size());
  req->wait();
  req->wait();  // idempotent
  EXPECT_TRUE(req->test());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(f[i], rank_sum() + n * i) << i;
}

TEST_F(World, ReduceScatterGivesEachRankItsSummedSlice) {
  const int m = 3;
  std::vector<float> in(n * m), out(m);
  for (int k = 0; k < n; ++k)
    for (int j = 0; j < m; ++j) in[k * m + j] = me + k * 100 + j;
  comm->reduce_scatter(in.data(), out.data(), m);
  for (int j = 0; j < m; ++j) EXPECT_EQ(out[j], rank_sum() + n * (me * 100 + j));
}

TEST_F(World, AllgatherPlacesRankSlicesInOrder) {
  const int m = 4;
  std::vector<float> in(m), out(n * m);
  std::vector<double> din{me + 0.5}, dout(n);
  for (int j = 0; j < m; ++j) in[j] = me * 10 + j;
  comm->allgather(in.data(), out.data(), m);
  comm->allgather(din.data(), dout.data(), 1);
  for (int r = 0; r < n; ++r) {
    for (int j = 0; j < m; ++j) EXPECT_EQ(out[r * m + j], r * 10 + j);
    EXPECT_EQ(dout[r], r + 0.5);
  }
}

TEST_F(World, BroadcastFromLastRank) {
  int value = me == n - 1 ? 4242 : -1;
  comm->broadcast(&value, sizeof value, n - 1);
  EXPECT_EQ(value, 4242);
}

// Rank s sends s + r + 1 floats of value 100 s + r to rank r: uneven counts, including zero-free.
TEST_F(World, AlltoallvRoutesVariableCounts) {
  std::vector<int> send_counts(n), recv_counts(n);
  std::vector<float> send, expected;
  for (int r = 0; r < n; ++r) {
    send_counts[r] = me + r + 1;
    send.insert(send.end(), send_counts[r], 100.0f * me + r);
    recv_counts[r] = r + me + 1;
    expected.insert(expected.end(), recv_counts[r], 100.0f * r + me);
  }
  std::vector<float> recv(expected.size(), -1.0f);
  comm->alltoallv(send.data(), send_counts.data(), recv.data(), recv_counts.data());
  EXPECT_EQ(recv, expected);
}

TEST_F(World, IsendrecvAroundTheRing) {
  const int to = (me + 1) % n, from = (me + n - 1) % n;
  std::vector<float> send(64, static_cast<float>(me)), recv(64, -1.0f);
  std::unique_ptr<Request> req = comm->isendrecv(send.data(), send.size(), to, recv.data(), recv.size(), from, 7);
  while (!req->test()) {
  }
  req->wait();
  for (float v : recv) ASSERT_EQ(v, from);
}

TEST_F(World, BlockingSendRecvBetweenPairs) {
  if (n == 1) GTEST_SKIP() << "needs two ranks";
  std::vector<float> buf(16, static_cast<float>(me));
  if (me % 2 == 0 && me + 1 < n) {
    comm->send(buf.data(), buf.size(), me + 1, 3);
  } else if (me % 2 == 1) {
    comm->recv(buf.data(), buf.size(), me - 1, 3);
    for (float v : buf) ASSERT_EQ(v, me - 1);
  }
  comm->barrier();
}

// Even and odd ranks form two groups, ordered by descending world rank (key = -rank).
TEST_F(World, SplitGroupsByColorOrderedByKey) {
  std::unique_ptr<Communicator> sub = comm->split(me % 2, -me);
  std::vector<int> members;
  for (int r = n - 1; r >= 0; --r)
    if (r % 2 == me % 2) members.push_back(r);
  ASSERT_EQ(sub->size(), static_cast<int>(members.size()));
  EXPECT_EQ(members[sub->rank()], me);
  double d = me;
  sub->allreduce(&d, 1);
  EXPECT_EQ(d, std::accumulate(members.begin(), members.end(), 0.0));
}

TEST(Single, CollectivesAreCopiesOrNoOps) {
  std::unique_ptr<Communicator> one = make_single();
  EXPECT_EQ(one->rank(), 0);
  EXPECT_EQ(one->size(), 1);
  std::vector<float> a{1, 2, 3}, b(3);
  one->allreduce(a.data(), 3);
  EXPECT_EQ(a, (std::vector<float>{1, 2, 3}));
  one->iallreduce(a.data(), 3)->wait();
  one->reduce_scatter(a.data(), b.data(), 3);
  EXPECT_EQ(b, a);
  std::fill(b.begin(), b.end(), 0.0f);
  one->allgather(a.data(), b.data(), 3);
  EXPECT_EQ(b, a);
  int counts = 3;
  std::fill(b.begin(), b.end(), 0.0f);
  one->alltoallv(a.data(), &counts, b.data(), &counts);
  EXPECT_EQ(b, a);
  std::fill(b.begin(), b.end(), 0.0f);
  EXPECT_TRUE(one->isendrecv(a.data(), 3, 0, b.data(), 3, 0, 0)->test());
  EXPECT_EQ(b, a);
  EXPECT_EQ(one->split(5, 0)->size(), 1);
}

}  // namespace
}  // namespace rw
