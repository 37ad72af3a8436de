// The MPI ranks of `ringwise generate` and `ringwise eval` under mpirun: one sequence at a time,
// spread over --cp ranks (context-parallel prefill and decode, models/llama_inference.h). Every
// rank runs the whole command; only rank 0 prints and writes.
#pragma once
#include <memory>

#include "dist/communicator.h"
#include "dist/ring_attention.h"
#include "models/llama_inference.h"

namespace rw {

class InferenceRanks {
 public:
  // Starts MPI when mpirun launched this process; UserError naming `command` unless it started
  // exactly `cp` ranks (other parallel layouts do not apply to inference).
  InferenceRanks(int cp, const char* command);
  // Spreads the engine's cache over the ranks (nothing for one rank).
  void attach(LlamaInference& engine) { engine.set_context_parallel(&ring_); }
  bool writes() const { return comm_->rank() == 0; }

 private:
  std::unique_ptr<Communicator> comm_;
  RingAttention ring_;
};

}  // namespace rw
