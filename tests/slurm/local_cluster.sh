#!/usr/bin/env bash
# A real one-node Slurm cluster for the tests, private to a state directory: its own munged (own
# key and socket), slurmctld and slurmd on non-default ports, with the node line from `slurmd -C`.
# Needs root and Debian's slurm-wlm and munge (.ci/install-deps).
#
#   local_cluster.sh start DIR        start the daemons; SLURM_CONF=DIR/slurm.conf for the clients
#   local_cluster.sh stop DIR         stop what start started (by the pids in DIR)
#   local_cluster.sh run DIR CMD...   start, run CMD with SLURM_CONF set, stop even when CMD fails
#
# When the cluster cannot start, `run` says why and exits 1 under CI (env CI set) and 77 (the
# ctest skip code) elsewhere.
set -uo pipefail

die() {
  echo "local_cluster: $*" >&2
  exit 1
}

daemons=(slurmctld slurmd munged)

start() {
  local dir=$1
  for tool in slurmctld slurmd munged mungekey sinfo; do
    command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install slurm-wlm munge)"
  done
  [[ $(id -u) -eq 0 ]] || die "needs root (SlurmUser=root, as in a CI container)"
  mkdir -p "$dir/state" "$dir/spool" || die "cannot create $dir"
  mungekey --create --keyfile="$dir/munge.key" --force 2>"$dir/mungekey.log" || die "mungekey failed: $(cat "$dir/mungekey.log")"
  munged --force --socket="$dir/munge.socket" --key-file="$dir/munge.key" --pid-file="$dir/munged.pid" \
    --log-file="$dir/munged.log" --seed-file="$dir/munge.seed" 2>>"$dir/munged.log" ||
    die "munged did not start: $(tail -3 "$dir/munged.log")"

  # Two free ports, away from Slurm's defaults, so that another cluster on the machine is no matter.
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 5000 * 2))
    ! (: >/dev/tcp/127.0.0.1/$port) 2>/dev/null && ! (: >/dev/tcp/127.0.0.1/$((port + 1))) 2>/dev/null && break
  done
  local node host
  host=$(hostname -s)
  # "NodeName=vm CPUs=2 ... RealMemory=24105": keep a little memory back for the daemons.
  node=$(slurmd -C | head -1 | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^RealMemory=/) { split($i, m, "="); $i = "RealMemory=" int(m[2] * 0.9) } print}')
  [[ $node == NodeName=* ]] || die "slurmd -C printed no node line"
  cat >"$dir/slurm.conf" <<CONF
ClusterName=ringwise-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.socket,cred_expire=5
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerType=sched/backfill
MpiDefault=none
KillWait=5
MinJobAge=600
$node State=UNKNOWN
PartitionName=debug Nodes=$(echo "$node" | sed 's/^NodeName=\([^ ]*\).*/\1/') Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -c -f "$SLURM_CONF" || die "slurmctld did not start: $(tail -5 "$dir/slurmctld.log")"
  slurmd -f "$SLURM_CONF" || die "slurmd did not start: $(tail -5 "$dir/slurmd.log")"
  for _ in $(seq 60); do
    [[ $(sinfo -h -o %t 2>/dev/null) == idle ]] && return 0
    sleep 0.5
  done
  die "the node did not become idle in 30 s: sinfo says '$(sinfo -h -o '%t %E' 2>&1)'; $(tail -3 "$dir/slurmd.log")"
}

stop() {
  local dir=$1
  # Jobs first, while the daemons still run: their slurmstepd would outlive slurmd.
  if [[ -f $dir/slurmctld.pid ]]; then
    SLURM_CONF=$dir/slurm.conf scancel --full --quiet --user=root 2>/dev/null
    for _ in $(seq 100); do
      [[ -z $(SLURM_CONF=$dir/slurm.conf squeue -h 2>/dev/null) ]] && break
      sleep 0.1
    done
  fi
  for daemon in "${daemons[@]}"; do
    local pidfile=$dir/$daemon.pid
    [[ -f $pidfile ]] || continue
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    rm -f "$pidfile"
  done
  return 0
}

case ${1:-} in
  start) [[ $# -eq 2 ]] || die "usage: $0 start DIR"; (start "$2") || { stop "$2"; exit 1; } ;;
  stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop "$2" ;;
  run)
    [[ $# -ge 3 ]] || die "usage: $0 run DIR CMD..."
    dir=$2
    shift 2
    trap 'stop "$dir"' EXIT
    if ! (start "$dir"); then
      if [[ -n ${CI:-} ]]; then
        echo "local_cluster: Slurm could not start (above); failing because CI is set" >&2
        exit 1
      fi
      echo "local_cluster: Slurm could not start (above); skipping (CI is not set)" >&2
      exit 77
    fi
    SLURM_CONF=$dir/slurm.conf "$@"
    ;;
  *) die "usage: $0 start|stop|run DIR [CMD...]" ;;
esac
