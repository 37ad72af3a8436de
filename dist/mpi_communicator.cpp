// The MPI backend of Communicator, and the single-rank one that needs no MPI. Every MPI call goes
// through RW_MPI_CHECK and every blocking one is watched (dist/watchdog.h), so a failure or a dead
// peer ends the job with the rank, host and call named.
#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "dist/communicator.h"
#include "dist/mpi_runtime.h"
#include "dist/watchdog.h"

namespace rw {
namespace {

int mpi_count(size_t n) {
  RW_CHECK(n <= static_cast<size_t>(INT_MAX), "%zu elements exceed one MPI call's int count", n);
  return static_cast<int>(n);
}

MPI_Op mpi_op(ReduceOp op) { return op == ReduceOp::Sum ? MPI_SUM : MPI_MAX; }

class MpiRequest : public Request {
 public:
  explicit MpiRequest(std::vector<MPI_Request> reqs) : reqs_(std::move(reqs)) {}
  ~MpiRequest() override { wait(); }  // MPI must not write into a buffer its owner has freed
  bool test() override {
    int done = 0;
    RW_MPI_CHECK(MPI_Testall(static_cast<int>(reqs_.size()), reqs_.data(), &done, MPI_STATUSES_IGNORE));
    return done != 0;
  }
  void wait() override {
    WatchedCall watched("MPI_Waitall");
    RW_MPI_CHECK(MPI_Waitall(static_cast<int>(reqs_.size()), reqs_.data(), MPI_STATUSES_IGNORE));
  }

 private:
  std::vector<MPI_Request> reqs_;  // MPI sets each to MPI_REQUEST_NULL when done, so waits repeat safely
};

class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
    RW_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    RW_MPI_CHECK(MPI_Comm_size(comm_, &size_));
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned_ && !finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce(float* data, size_t n, ReduceOp op) override {
    WatchedCall watched("MPI_Allreduce");
    RW_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, mpi_count(n), MPI_FLOAT, mpi_op(op), comm_));
  }
  void allreduce(double* data, size_t n, ReduceOp op) override {
    WatchedCall watched("MPI_Allreduce");
    RW_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, mpi_count(n), MPI_DOUBLE, mpi_op(op), comm_));
  }
  std::unique_ptr<Request> iallreduce(float* data, size_t n) override {
    std::vector<MPI_Request> reqs(1);
    RW_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, data, mpi_count(n), MPI_FLOAT, MPI_SUM, comm_, &reqs[0]));
    return std::make_unique<MpiRequest>(std::move(reqs));
  }
  void reduce_scatter(const float* in, float* out, size_t n) override {
    WatchedCall watched("MPI_Reduce_scatter_block");
    RW_MPI_CHECK(MPI_Reduce_scatter_block(in, out, mpi_count(n), MPI_FLOAT, MPI_SUM, comm_));
  }
  void allgather(const float* in, float* out, size_t n) override {
    WatchedCall watched("MPI_Allgather");
    RW_MPI_CHECK(MPI_Allgather(in, mpi_count(n), MPI_FLOAT, out, mpi_count(n), MPI_FLOAT, comm_));
  }
  void allgather(const double* in, double* out, size_t n) override {
    WatchedCall watched("MPI_Allgather");
    RW_MPI_CHECK(MPI_Allgather(in, mpi_count(n), MPI_DOUBLE, out, mpi_count(n), MPI_DOUBLE, comm_));
  }
  void broadcast(void* data, size_t bytes, int root) override {
    WatchedCall watched("MPI_Bcast");
    RW_MPI_CHECK(MPI_Bcast(data, mpi_count(bytes), MPI_BYTE, root, comm_));
  }
  void alltoallv(const float* send, const int* send_counts, float* recv, const int* recv_counts) override {
    std::vector<int> send_displs(size_), recv_displs(size_);
    for (int r = 1; r < size_; ++r) {
      send_displs[r] = send_displs[r - 1] + send_counts[r - 1];
      recv_displs[r] = recv_displs[r - 1] + recv_counts[r - 1];
    }
    WatchedCall watched("MPI_Alltoallv");
    RW_MPI_CHECK(MPI_Alltoallv(send, send_counts, send_displs.data(), MPI_FLOAT, recv, recv_counts,
                               recv_displs.data(), MPI_FLOAT, comm_));
  }
  void send(const float* data, size_t n, int peer, int tag) override {
    WatchedCall watched("MPI_Send");
    RW_MPI_CHECK(MPI_Send(data, mpi_count(n), MPI_FLOAT, peer, tag, comm_));
  }
  void recv(float* data, size_t n, int peer, int tag) override {
    WatchedCall watched("MPI_Recv");
    RW_MPI_CHECK(MPI_Recv(data, mpi_count(n), MPI_FLOAT, peer, tag, comm_, MPI_STATUS_IGNORE));
  }
  std::unique_ptr<Request> isendrecv(const float* send, size_t n_send, int to, float* recv, size_t n_recv, int from,
                                     int tag) override {
    std::vector<MPI_Request> reqs(2);
    RW_MPI_CHECK(MPI_Irecv(recv, mpi_count(n_recv), MPI_FLOAT, from, tag, comm_, &reqs[0]));
    RW_MPI_CHECK(MPI_Isend(send, mpi_count(n_send), MPI_FLOAT, to, tag, comm_, &reqs[1]));
    return std::make_unique<MpiRequest>(std::move(reqs));
  }
  void barrier() override {
    WatchedCall watched("MPI_Barrier");
    RW_MPI_CHECK(MPI_Barrier(comm_));
  }
  std::unique_ptr<Communicator> split(int color, int key) override {
    MPI_Comm sub;
    WatchedCall watched("MPI_Comm_split");
    RW_MPI_CHECK(MPI_Comm_split(comm_, color, key, &sub));
    return std::make_unique<MpiCommunicator>(sub, true);
  }

 private:
  MPI_Comm comm_;
  bool owned_;
  int rank_ = 0, size_ = 1;
};

class DoneRequest : public Request {
 public:
  bool test() override { return true; }
  void wait() override {}
};

// One rank: reductions are the identity, gathers and exchanges with oneself are copies.
class SingleCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce(float*, size_t, ReduceOp) override {}
  void allreduce(double*, size_t, ReduceOp) override {}
  std::unique_ptr<Request> iallreduce(float*, size_t) override { return std::make_unique<DoneRequest>(); }
  void reduce_scatter(const float* in, float* out, size_t n) override { std::copy(in, in + n, out); }
  void allgather(const float* in, float* out, size_t n) override { std::copy(in, in + n, out); }
  void allgather(const double* in, double* out, size_t n) override { std::copy(in, in + n, out); }
  void broadcast(void*, size_t, int root) override { RW_CHECK(root == 0, "broadcast root %d of 1 rank", root); }
  void alltoallv(const float* send, const int* send_counts, float* recv, const int* recv_counts) override {
    RW_CHECK(send_counts[0] == recv_counts[0], "alltoallv to self: %d sent, %d expected", send_counts[0],
             recv_counts[0]);
    std::copy(send, send + send_counts[0], recv);
  }
  void send(const float*, size_t, int peer, int) override {
    RW_CHECK(false, "blocking send to rank %d of a single-rank communicator would never complete", peer);
  }
  void recv(float*, size_t, int peer, int) override {
    RW_CHECK(false, "blocking recv from rank %d of a single-rank communicator would never complete", peer);
  }
  std::unique_ptr<Request> isendrecv(const float* send, size_t n_send, int to, float* recv, size_t n_recv, int from,
                                     int) override {
    RW_CHECK(to == 0 && from == 0 && n_send == n_recv, "isendrecv on one rank: to %d, from %d, %zu vs %zu floats",
             to, from, n_send, n_recv);
    std::copy(send, send + n_send, recv);
    return std::make_unique<DoneRequest>();
  }
  void barrier() override {}
  std::unique_ptr<Communicator> split(int, int) override { return std::make_unique<SingleCommunicator>(); }
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_world() {
  RW_CHECK(mpi_initialized(), "make_mpi_world before mpi_init");
  return std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, false);
}

std::unique_ptr<Communicator> make_single() { return std::make_unique<SingleCommunicator>(); }

}  // namespace rw
