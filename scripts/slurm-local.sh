#!/usr/bin/env bash
# A single-node SLURM on this machine (slurm/README.md): its own munged, slurmctld and slurmd,
# all under one state folder, so the scripts of slurm/ can be tried on a laptop and the tests
# (tests/slurm) can submit to a real controller. It needs Debian's slurm-wlm and munge
# packages (scripts/install-deps.sh), not root: the daemons run as the calling user, with the
# plugins that work without privileges (proctrack/linuxproc, task/none) and select/cons_tres.
#
#   scripts/slurm-local.sh start    write the configuration, start the daemons, wait until the
#                                   node is idle; prints the line to export
#   scripts/slurm-local.sh stop     stop the daemons this folder's PID files name (no others)
#   scripts/slurm-local.sh status   whether they run, and sinfo
#   scripts/slurm-local.sh env      the export line: eval "$(scripts/slurm-local.sh env)"
#
# Settings (environment):
#   SEMSKIP_SLURM_DIR       state folder (config, logs, spool, munge socket and key)
#                           [${XDG_STATE_HOME:-$HOME/.local/state}/semskip-slurm]
#   SEMSKIP_SLURM_PORT      slurmctld's port; slurmd takes the next one [6917]
#   SEMSKIP_SLURM_CPUS      CPUs the node declares [this machine's, from slurmd -C]
#   SEMSKIP_SLURM_MEMORY_MB memory the node declares [this machine's, from slurmd -C]
#   SEMSKIP_SLURM_MPI       srun's default MPI plugin [pmix where installed, else none]
#
# Exit status: 0 done, 1 a daemon failed to start or stop (its log is printed), 2 usage,
# 3 slurm-wlm or munge not installed.
set -euo pipefail

die() { echo "slurm-local: $*" >&2; exit 1; }

dir=${SEMSKIP_SLURM_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/semskip-slurm}
port=${SEMSKIP_SLURM_PORT:-6917}
conf="$dir/slurm.conf"
sock="$dir/munge/munge.socket"

need_tools() {
  local t missing=()
  for t in munged slurmctld slurmd scontrol sinfo; do
    command -v "$t" >/dev/null 2>&1 || [[ -x /usr/sbin/$t ]] || missing+=("$t")
  done
  if ((${#missing[@]})); then
    echo "slurm-local: not installed: ${missing[*]} (Debian: apt-get install slurm-wlm munge)" >&2
    exit 3
  fi
}

sbin() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }

# The PID in `file` if that process is alive and runs `prog` (a stale file, or a PID reused
# by another program, names nothing).
live_pid() {
  local file=$1 prog=$2 pid exe
  [[ -r $file ]] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [[ -n $pid && -d /proc/$pid ]] || return 1
  # Debian installs slurmctld as slurmctld-wlm behind an alternative.
  exe=$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null || true)")
  [[ $exe == "$prog" || $exe == "$prog"-wlm ]] || return 1
  echo "$pid"
}

write_config() {
  local host user cpus mem mpi line topology=""
  host=$(hostname -s)
  user=$(id -un)
  line=$("$(sbin slurmd)" -C | head -n1)
  cpus=${SEMSKIP_SLURM_CPUS:-$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$line")}
  # The machine's own sockets and cores, unless a CPU count is declared instead.
  [[ -n ${SEMSKIP_SLURM_CPUS:-} ]] || topology=$(grep -o 'Boards=.*ThreadsPerCore=[0-9]*' <<<"$line" || true)
  mem=${SEMSKIP_SLURM_MEMORY_MB:-$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$line")}
  [[ $cpus =~ ^[0-9]+$ && $cpus -gt 0 ]] || die "SEMSKIP_SLURM_CPUS: expected a positive integer, got '$cpus'"
  [[ $mem =~ ^[0-9]+$ && $mem -gt 0 ]] || die "SEMSKIP_SLURM_MEMORY_MB: expected a positive integer, got '$mem'"
  if [[ -n ${SEMSKIP_SLURM_MPI:-} ]]; then
    mpi=$SEMSKIP_SLURM_MPI
  elif ls /usr/lib/*/slurm-wlm/mpi_pmix.so >/dev/null 2>&1 || ls /usr/lib*/slurm/mpi_pmix.so >/dev/null 2>&1; then
    mpi=pmix
  else
    mpi=none
  fi
  mkdir -p "$dir"/{state,spool,log,munge}
  chmod 0700 "$dir/munge"
  cat >"$conf" <<EOF
# Written by scripts/slurm-local.sh: a single-node cluster of this machine.
ClusterName=semskip-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
# cred_expire: also how long a requeued job waits before it may start again (default 120 s).
AuthInfo=socket=$sock,cred_expire=5
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# Without root or cgroups: processes tracked by their parents, no binding by slurmd.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=$mpi
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# Short waits, so tests see finished jobs and time limits quickly.
KillWait=10
MinJobAge=600
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus $topology RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
  if live_pid "$dir/munge/munged.pid" munged >/dev/null; then return; fi
  local key="$dir/munge/munge.key"
  if [[ ! -s $key ]]; then
    (umask 077; head -c 1024 /dev/urandom >"$key")
  fi
  chmod 0600 "$key"
  # --force: munged refuses root and some folder layouts by default; this one is private.
  "$(sbin munged)" --force --key-file="$key" --socket="$sock" --pid-file="$dir/munge/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" \
    || { cat "$dir/log/munged.log" >&2 || true; die "munged did not start"; }
}

start_daemon() {
  local prog=$1 pidfile=$2 log=$3
  shift 3
  if live_pid "$pidfile" "$prog" >/dev/null; then return; fi
  "$(sbin "$prog")" -f "$conf" "$@" || { tail -n 30 "$log" >&2 || true; die "$prog did not start"; }
}

cmd_start() {
  need_tools
  write_config
  start_munge
  # -i: ignore the state of an earlier controller of this folder (jobs of a stopped cluster).
  start_daemon slurmctld "$dir/slurmctld.pid" "$dir/log/slurmctld.log" -i
  start_daemon slurmd "$dir/slurmd.pid" "$dir/log/slurmd.log"
  export SLURM_CONF=$conf
  local i state=""
  for ((i = 0; i < 60; i++)); do
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n1 || true)
    case $state in
      idle|mixed|allocated) break ;;
      down*|drain*) scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  case $state in
    idle|mixed|allocated) ;;
    *) tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
       die "the node did not become idle (state '${state:-none}')" ;;
  esac
  echo "slurm-local: running (mpi default $(sed -n 's/^MpiDefault=//p' "$conf")); use it with:"
  echo "export SLURM_CONF=$conf"
}

stop_one() {
  local prog=$1 pidfile=$2 pid i
  pid=$(live_pid "$pidfile" "$prog") || return 0
  kill -TERM "$pid"
  for ((i = 0; i < 50; i++)); do
    [[ -d /proc/$pid ]] || return 0
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
}

cmd_stop() {
  # slurmd first: its job steps end with it; then the controller, then munge they both use.
  stop_one slurmd "$dir/slurmd.pid"
  stop_one slurmctld "$dir/slurmctld.pid"
  stop_one munged "$dir/munge/munged.pid"
  echo "slurm-local: stopped ($dir)"
}

cmd_status() {
  local prog pidfile pid up=0
  for prog in munged slurmctld slurmd; do
    pidfile="$dir/$prog.pid"
    [[ $prog == munged ]] && pidfile="$dir/munge/munged.pid"
    if pid=$(live_pid "$pidfile" "$prog"); then
      echo "$prog: running (pid $pid)"
      up=$((up + 1))
    else
      echo "$prog: not running"
    fi
  done
  if ((up == 3)); then SLURM_CONF=$conf sinfo; fi
  ((up == 3))
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF=$conf" ;;
  *) echo "usage: scripts/slurm-local.sh start|stop|status|env (SEMSKIP_SLURM_DIR=$dir)" >&2; exit 2 ;;
esac
