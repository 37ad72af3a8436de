// The one interface every parallel feature talks through. Backends: MPI (CPU ranks, this file's
// make_mpi_* functions) and NCCL (GPU, later) behind the same calls, so data, tensor, context and
// expert parallelism are written once. A communicator of size 1 is the single-process case: every
// collective is then a copy or a no-op, and layers need no separate code path.
//
// Every call is checked: a failure (or a peer that died, caught by the watchdog) ends the job with
// a message naming the call and the rank instead of hanging.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace rw {

enum class ReduceOp { Sum, Max };

// A pending non-blocking operation. wait() completes it (idempotent); test() polls, which also lets
// MPI progress the transfer while the caller computes. Destroying a pending request waits for it,
// so that no transfer outlives its buffers.
class Request {
 public:
  virtual ~Request() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In place over `n` elements on every rank.
  virtual void allreduce(float* data, size_t n, ReduceOp op = ReduceOp::Sum) = 0;
  virtual void allreduce(double* data, size_t n, ReduceOp op = ReduceOp::Sum) = 0;
  // Non-blocking sum in place (a gradient bucket while the backward pass goes on); `data` must stay
  // untouched until the request completes.
  virtual std::unique_ptr<Request> iallreduce(float* data, size_t n) = 0;
  // in has size() * n elements; rank r receives the sum of every rank's slice r in out (n elements).
  virtual void reduce_scatter(const float* in, float* out, size_t n) = 0;
  // in has n elements; out receives size() * n, rank r's contribution at r * n.
  virtual void allgather(const float* in, float* out, size_t n) = 0;
  virtual void allgather(const double* in, double* out, size_t n) = 0;
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // Variable all-to-all in elements: send_counts[r] floats go to rank r (packed in rank order),
  // recv_counts[r] arrive from rank r.
  virtual void alltoallv(const float* send, const int* send_counts, float* recv, const int* recv_counts) = 0;
  // Blocking point-to-point.
  virtual void send(const float* data, size_t n, int peer, int tag) = 0;
  virtual void recv(float* data, size_t n, int peer, int tag) = 0;
  // Non-blocking exchange (the ring's step): sends n_send floats to `to` while receiving n_recv
  // from `from`.
  virtual std::unique_ptr<Request> isendrecv(const float* send, size_t n_send, int to, float* recv, size_t n_recv,
                                             int from, int tag) = 0;
  virtual void barrier() = 0;
  // Ranks with the same color form a new communicator, ordered by key (MPI_Comm_split semantics).
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;
};

// MPI_COMM_WORLD (MPI must be initialised, see dist/mpi_runtime.h).
std::unique_ptr<Communicator> make_mpi_world();
// A communicator of one rank, with no MPI involved.
std::unique_ptr<Communicator> make_single();

}  // namespace rw
