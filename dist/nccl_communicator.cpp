// NCCL behind the Communicator interface. Each NCCL call goes through RW_NCCL_CHECK, which names
// the call, the rank, NCCL's error string and its last detailed message.
#include "dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <vector>

#include "core/check.h"
#include "core/cuda/cuda_check.h"

#define RW_NCCL_CHECK_AT(call, rank, comm)                                                              \
  do {                                                                                                  \
    ncclResult_t rw_nr_ = (call);                                                                       \
    if (rw_nr_ != ncclSuccess)                                                                          \
      ::rw::fatal(__FILE__, __LINE__,                                                                   \
                  ::rw::format("%s failed on rank %d: %s (%s)", #call, (rank), ncclGetErrorString(rw_nr_), \
                               ncclGetLastError(comm)));                                                \
  } while (0)
// Inside NcclCommunicator: its own rank and communicator.
#define RW_NCCL_CHECK(call) RW_NCCL_CHECK_AT(call, rank_, comm_)

namespace rw {
namespace {

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::Sum ? ncclSum : ncclMax; }

// Completes when the event recorded after the transfer has fired; owns the event.
class NcclRequest : public Request {
 public:
  explicit NcclRequest(cudaStream_t stream) {
    RW_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
    RW_CUDA_CHECK(cudaEventRecord(done_, stream));
  }
  ~NcclRequest() override {
    wait();  // the transfer must not outlive its buffers
    RW_CUDA_CHECK(cudaEventDestroy(done_));
  }
  bool test() override {
    cudaError_t err = cudaEventQuery(done_);
    if (err == cudaErrorNotReady) return false;
    RW_CUDA_CHECK(err);
    return true;
  }
  void wait() override { RW_CUDA_CHECK(cudaEventSynchronize(done_)); }

 private:
  cudaEvent_t done_ = nullptr;
};

class NcclCommunicator : public Communicator {
 public:
  // Takes ownership of `comm` (already initialised).
  NcclCommunicator(ncclComm_t comm, int rank, int size) : comm_(comm), rank_(rank), size_(size) {
    RW_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    RW_CUDA_CHECK(cudaEventCreateWithFlags(&compute_done_, cudaEventDisableTiming));
    RW_CUDA_CHECK(cudaMalloc(&scratch_, sizeof(float)));
    RW_CUDA_CHECK(cudaMemset(scratch_, 0, sizeof(float)));
  }
  ~NcclCommunicator() override {
    RW_CUDA_CHECK(cudaStreamSynchronize(stream_));
    RW_NCCL_CHECK(ncclCommDestroy(comm_));
    RW_CUDA_CHECK(cudaFree(scratch_));
    RW_CUDA_CHECK(cudaEventDestroy(compute_done_));
    RW_CUDA_CHECK(cudaStreamDestroy(stream_));
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce(float* data, size_t n, ReduceOp op) override {
    after_compute();
    RW_NCCL_CHECK(ncclAllReduce(data, data, n, ncclFloat32, nccl_op(op), comm_, stream_));
    finish();
  }
  void allreduce(double* data, size_t n, ReduceOp op) override {
    after_compute();
    RW_NCCL_CHECK(ncclAllReduce(data, data, n, ncclFloat64, nccl_op(op), comm_, stream_));
    finish();
  }
  std::unique_ptr<Request> iallreduce(float* data, size_t n) override {
    after_compute();
    RW_NCCL_CHECK(ncclAllReduce(data, data, n, ncclFloat32, ncclSum, comm_, stream_));
    return std::make_unique<NcclRequest>(stream_);
  }
  void reduce_scatter(const float* in, float* out, size_t n) override {
    after_compute();
    RW_NCCL_CHECK(ncclReduceScatter(in, out, n, ncclFloat32, ncclSum, comm_, stream_));
    finish();
  }
  void allgather(const float* in, float* out, size_t n) override {
    after_compute();
    RW_NCCL_CHECK(ncclAllGather(in, out, n, ncclFloat32, comm_, stream_));
    finish();
  }
  void allgather(const double* in, double* out, size_t n) override {
    after_compute();
    RW_NCCL_CHECK(ncclAllGather(in, out, n, ncclFloat64, comm_, stream_));
    finish();
  }
  void broadcast(void* data, size_t bytes, int root) override {
    after_compute();
    RW_NCCL_CHECK(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_));
    finish();
  }
  void alltoallv(const float* send, const int* send_counts, float* recv, const int* recv_counts) override {
    after_compute();
    RW_NCCL_CHECK(ncclGroupStart());
    size_t send_at = 0, recv_at = 0;
    for (int r = 0; r < size_; ++r) {
      if (send_counts[r] > 0) RW_NCCL_CHECK(ncclSend(send + send_at, send_counts[r], ncclFloat32, r, comm_, stream_));
      if (recv_counts[r] > 0) RW_NCCL_CHECK(ncclRecv(recv + recv_at, recv_counts[r], ncclFloat32, r, comm_, stream_));
      send_at += send_counts[r];
      recv_at += recv_counts[r];
    }
    RW_NCCL_CHECK(ncclGroupEnd());
    finish();
  }
  void send(const float* data, size_t n, int peer, int /*tag*/) override {
    after_compute();
    RW_NCCL_CHECK(ncclSend(data, n, ncclFloat32, peer, comm_, stream_));
    finish();
  }
  void recv(float* data, size_t n, int peer, int /*tag*/) override {
    after_compute();
    RW_NCCL_CHECK(ncclRecv(data, n, ncclFloat32, peer, comm_, stream_));
    finish();
  }
  std::unique_ptr<Request> isendrecv(const float* send, size_t n_send, int to, float* recv, size_t n_recv, int from,
                                     int /*tag*/) override {
    after_compute();
    // One group, so the ring's simultaneous send and receive cannot deadlock each other.
    RW_NCCL_CHECK(ncclGroupStart());
    RW_NCCL_CHECK(ncclSend(send, n_send, ncclFloat32, to, comm_, stream_));
    RW_NCCL_CHECK(ncclRecv(recv, n_recv, ncclFloat32, from, comm_, stream_));
    RW_NCCL_CHECK(ncclGroupEnd());
    return std::make_unique<NcclRequest>(stream_);
  }
  // NCCL has no barrier; a one-element allreduce that every rank must join serves as one.
  void barrier() override { allreduce(scratch_, 1, ReduceOp::Sum); }
  std::unique_ptr<Communicator> split(int color, int key) override {
    RW_CHECK(color >= 0, "split color %d: NCCL needs a non-negative color", color);
    RW_CUDA_CHECK(cudaStreamSynchronize(stream_));
    ncclComm_t sub = nullptr;
    RW_NCCL_CHECK(ncclCommSplit(comm_, color, key, &sub, nullptr));
    int sub_rank = 0, sub_size = 0;
    RW_NCCL_CHECK(ncclCommUserRank(sub, &sub_rank));
    RW_NCCL_CHECK(ncclCommCount(sub, &sub_size));
    return std::make_unique<NcclCommunicator>(sub, sub_rank, sub_size);
  }

 private:
  // The transfer waits for the kernels already queued on the default stream.
  void after_compute() {
    RW_CUDA_CHECK(cudaEventRecord(compute_done_, cudaStreamLegacy));
    RW_CUDA_CHECK(cudaStreamWaitEvent(stream_, compute_done_, 0));
  }
  void finish() { RW_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

  ncclComm_t comm_;
  int rank_, size_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_done_ = nullptr;
  float* scratch_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl(Communicator& bootstrap) {
  ncclUniqueId id{};
  const int rank = bootstrap.rank();
  ncclComm_t comm = nullptr;
  if (rank == 0) RW_NCCL_CHECK_AT(ncclGetUniqueId(&id), rank, nullptr);
  bootstrap.broadcast(&id, sizeof(id), 0);
  RW_NCCL_CHECK_AT(ncclCommInitRank(&comm, bootstrap.size(), id, rank), rank, nullptr);
  return std::make_unique<NcclCommunicator>(comm, rank, bootstrap.size());
}

}  // namespace rw
