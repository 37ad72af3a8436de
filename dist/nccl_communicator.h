// The NCCL backend of Communicator (built when CUDA and NCCL are found: RINGWISE_HAVE_NCCL).
// Every buffer handed to it is device memory. Collectives run on a dedicated stream that first
// waits (an event) for the work already queued on the legacy default stream, where the kernels run,
// so a call sees the data the kernels before it produced. Blocking calls return once the transfer
// is done; iallreduce and isendrecv return a Request backed by an event recorded after the transfer.
//
// NCCL has no tags: send/recv pairs between two ranks match in issue order, and `tag` is ignored.
// NCCL cannot place two ranks of one communicator on the same GPU.
#pragma once
#include <memory>

#include "dist/communicator.h"

namespace rw {

// A communicator over the same ranks as `bootstrap` (the MPI world, say), one GPU per rank: the
// current CUDA device. Rank 0's NCCL unique id reaches the others through bootstrap.broadcast.
std::unique_ptr<Communicator> make_nccl(Communicator& bootstrap);

}  // namespace rw
