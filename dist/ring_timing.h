// Where ring attention's time went, step by step, and how much of its communication computation
// hid (`ringwise bench ring`, docs/distributed.md "Is the communication hidden?").
//
// A rank that finishes its share of a ring step first may wait for its neighbour, so the time a
// rank spends blocked on transfers is partly its neighbour's slower computation, not communication.
// The accounting therefore works per step across the ranks. Timed steps start together (ring
// attention puts a barrier before each); in step i the slowest rank's computation is time the step
// needs whatever the transfers do, and the transfers held the step up only by as much as some rank
// finished its computing and waiting later than that:
//   exposed_i = max_r (compute_{r,i} + wait_{r,i}) - max_r compute_{r,i}.
// The rest of the step, up to its longest rank's end, is neither computing nor waiting on a
// transfer: the barrier, posting transfers, and on shared cores the time a rank was not running:
//   other_i = max_r step_{r,i} - max_r (compute_{r,i} + wait_{r,i}).
// Set against the same transfers timed with no computation at all (RingOptions::transfers_only),
// where every step's wait is exposed, that gives the share of communication hidden.
#pragma once
#include <cstddef>
#include <vector>

#include "dist/communicator.h"

namespace rw {

// One ring step on one rank: step_s from this step's start to the next's (the same on every rank,
// up to the barrier's exit), of which compute_s in kernel calls, merges and sums, and wait_s blocked
// on transfers; sent_bytes is what the rank posted for sending during the step.
struct RingStepTime {
  double step_s = 0, compute_s = 0, wait_s = 0, sent_bytes = 0;
};

// One rank's steps in order: a forward has P of them; a backward P and the last dK/dV hop home,
// which has nothing to compute. A forward and its backward are timed as one list by appending.
using RingTimes = std::vector<RingStepTime>;

// Every rank's steps (collective over cp; each rank must bring the same number): result[r] is rank r's.
std::vector<RingTimes> gather_ring_times(const RingTimes& mine, Communicator& cp);

// One ring call (or forward + backward) seen across the ranks, in seconds: sums over its steps of
// the quantities above. step_s = compute_s + exposed_s + other_s.
struct RingOverlap {
  double step_s = 0;      // the longest rank's step
  double compute_s = 0;   // the slowest rank's computation: the critical path
  double exposed_s = 0;   // communication that computation did not hide
  double other_s = 0;     // neither computing nor waiting on a transfer
  double alone_s = 0;     // the same steps' transfers with no computation (all exposed)
  double sent_bytes = 0;  // per rank (every rank sends the same)
  // The part of exposed_s and alone_s in steps where no rank computes (a backward's hop home), which
  // nothing in the call can hide.
  double bare_exposed_s = 0, bare_alone_s = 0;
  // 1 - exposed / alone, clamped to [0, 1]; 1 when nothing was sent.
  double hidden() const;
  // The same over the steps that compute: how well computation hides what it can.
  double hidden_where_computing() const;
};

// `run` and `alone` come from gather_ring_times over the same ranks and the same sequence of calls,
// `alone` with transfers_only.
RingOverlap ring_overlap(const std::vector<RingTimes>& run, const std::vector<RingTimes>& alone);

}  // namespace rw
