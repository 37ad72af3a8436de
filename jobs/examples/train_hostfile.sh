#!/usr/bin/env bash
# Data-parallel training over the machines of a hostfile with Open MPI's mpirun, outside any
# scheduler: as many ranks as the hostfile has slots, --dp set to match. SIGUSR1 or SIGTERM to
# mpirun (forwarded to the ranks) saves a checkpoint and stops; run the script again to resume.
#
#   jobs/examples/train_hostfile.sh [HOSTFILE [ringwise train options...]]
#
# RINGWISE names the binary (default: build/jobs/ringwise of this checkout).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
hostfile=${1:-$here/hostfile}
shift $(($# > 0 ? 1 : 0))
ringwise=${RINGWISE:-$here/../../build/jobs/ringwise}
# The total of the slot counts, "slots=N" on every non-comment line.
ranks=$(sed -e 's/#.*//' "$hostfile" | awk -F 'slots=' 'NF > 1 { n += $2 } END { print n }')
# Without options, a small demonstration run.
(($# > 0)) || set -- --preset tiny --steps 200 --threads 1 --run-dir runs/hostfile
exec mpirun --hostfile "$hostfile" -np "$ranks" "$ringwise" train --dp "$ranks" --resume auto "$@"
