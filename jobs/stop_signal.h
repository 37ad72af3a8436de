// Stopping a run early without losing work: Slurm's warning before the time limit (SIGUSR1, which
// `ringwise submit` asks for) or a SIGTERM makes training finish its step and save a checkpoint.
// Only the warning also puts a Slurm job back in the queue, where `--resume auto` continues it: a
// SIGTERM is how scancel (or preemption) ends a job, and requeueing then would undo the scancel.
#pragma once

#include "dist/communicator.h"

namespace rw {

// The exit code of a run that stopped on such a signal after saving its checkpoint (BSD's
// EX_TEMPFAIL: try again later), apart from success (0), failure (1) and a user error (2).
constexpr int kExitStoppedBySignal = 75;

// Ordered: when ranks received different signals, the larger wins.
enum class StopRequest { kNone = 0, kStop = 1, kStopAndRequeue = 2 };

// SIGTERM (kStop) and SIGUSR1 (kStopAndRequeue) only set a flag from now on; training reads it
// between steps.
void install_stop_signal_handlers();

// What the signals received by any rank of `world` ask for. Collective, so that every rank stops
// after the same step: a rank that stopped alone would leave the others in their next collective
// forever.
StopRequest stop_requested_on_any_rank(Communicator& world);

}  // namespace rw
