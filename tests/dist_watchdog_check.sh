#!/bin/sh
# ctest entry: a rank that hangs or dies mid-step must end the whole mpirun job with a non-zero
# exit and a message naming a rank; `timeout 60` turns a hang into a failure.
# usage: dist_watchdog_check.sh MPIRUN VICTIM hang|die
mpirun=$1 victim=$2 mode=$3 timeout_s=3
start=$(date +%s)
out=$(timeout 60 "$mpirun" --oversubscribe --mca btl self,vader -np 2 "$victim" "$mode" "$timeout_s" 2>&1)
rc=$?
elapsed=$(($(date +%s) - start))
echo "$out"
echo "exit $rc after ${elapsed} s"
[ "$rc" -ne 0 ] || { echo "FAIL: the job exited 0"; exit 1; }
[ "$rc" -ne 124 ] || { echo "FAIL: the job hung (killed by timeout 60)"; exit 1; }
echo "$out" | grep -q "rank [0-9]" || { echo "FAIL: no message names a rank"; exit 1; }
if [ "$mode" = hang ]; then
  echo "$out" | grep -q "rank 0 on .*stuck in MPI_Allreduce for more than $timeout_s s (--comm-timeout)" ||
    { echo "FAIL: the watchdog's message is missing"; exit 1; }
fi
echo PASS
