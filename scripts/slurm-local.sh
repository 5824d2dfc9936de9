#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for Strand's SLURM tests and benchmark, from
# Debian's slurm-wlm and munge (apt-get install slurm-wlm munge).
#
#   bash scripts/slurm-local.sh start    # starts munged, slurmctld and slurmd; returns once
#                                        # sinfo shows the node idle (a no-op when it is)
#   bash scripts/slurm-local.sh stop     # cancels its jobs and stops them (a no-op when they are
#                                        # stopped)
#   bash scripts/slurm-local.sh status   # exit 0 when the node answers, 1 otherwise
#   bash scripts/slurm-local.sh conf     # prints the path of the cluster's slurm.conf
#
# Everything it makes is under STRAND_SLURM_DIR (default /var/lib/strand-slurm): slurm.conf,
# state, spool, logs and pid files. The daemons are started directly (no systemd: containers and
# CI machines often have none), as root, which a SLURM daemon on a test machine may be. SLURM's
# clients read /etc/slurm/slurm.conf unless SLURM_CONF says otherwise: the script links that path
# to its own file when nothing is there; where a site's configuration is, it leaves it alone and
# the tests set SLURM_CONF to `conf`'s answer.
#
# What the node needs, checked on Debian 12 (slurm-wlm 22.05): ProctrackType=proctrack/linuxproc
# and TaskPlugin=task/none (no cgroup plugin, which a container may not offer), select/cons_tres
# with CR_Core_Memory so that --cpus-per-task and --mem are what SLURM places by, the node under
# its real short hostname (reached at 127.0.0.1, so the name need not resolve) with this machine's
# cores and most of its memory.
set -euo pipefail

DIR="${STRAND_SLURM_DIR:-/var/lib/strand-slurm}"
CONF="$DIR/slurm.conf"
HOST="$(hostname -s)"
MUNGE_SOCKET_DIR=/run/munge

die() {
  echo "slurm-local: $*" >&2
  exit 1
}

need() {
  for program in munged slurmctld slurmd sinfo scontrol; do
    command -v "$program" >/dev/null 2>&1 || [ -x "/usr/sbin/$program" ] ||
      die "$program is not installed (apt-get install slurm-wlm munge)"
  done
  [ "$(id -u)" = 0 ] || die "run it as root: the test cluster's daemons run as root"
}

# Whether the process whose pid is in file $1 runs and is program $2.
running() {
  local pid
  pid="$(cat "$1" 2>/dev/null || true)"
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ]
}

write_conf() {
  local cpus memory
  cpus="$(nproc)"
  # slurmd refuses a node that has less memory than the configuration says: leave it a margin.
  memory="$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)"
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  cat >"$CONF.tmp" <<EOF
# Written by scripts/slurm-local.sh: a single-node test cluster.
ClusterName=strand
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Ended jobs stay in squeue for 5 minutes (the executor reads their final state there).
MinJobAge=300
KillWait=30
# A job that asks for no memory gets 1 GiB a CPU, not the whole node (the default).
DefMemPerCPU=1024
InactiveLimit=0
Waittime=0
# Schedule a job as soon as a place frees, not up to 3 s later (the default batch_sched_delay).
SchedulerParameters=batch_sched_delay=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
  mkdir -p /etc/slurm
  if [ ! -e /etc/slurm/slurm.conf ] && [ ! -L /etc/slurm/slurm.conf ]; then
    ln -s "$CONF" /etc/slurm/slurm.conf
  fi
}

start_munge() {
  mkdir -p "$MUNGE_SOCKET_DIR"
  chown munge:munge "$MUNGE_SOCKET_DIR" 2>/dev/null || true
  chmod 0755 "$MUNGE_SOCKET_DIR"
  if running "$MUNGE_SOCKET_DIR/munged.pid" munged; then return; fi
  [ -s /etc/munge/munge.key ] || die "/etc/munge/munge.key is missing (reinstall munge, or run mungekey)"
  # munged runs as the owner of its key.
  if id munge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --force 9>&-
  else
    /usr/sbin/munged --force 9>&-
  fi
}

nodeState() {
  SLURM_CONF="$CONF" sinfo --noheader --nodes="$HOST" --format=%T 2>/dev/null | head -n 1 || true
}

start() {
  need
  if running "$DIR/slurmctld.pid" slurmctld && running "$DIR/slurmd.pid" slurmd; then
    case "$(nodeState)" in idle | mixed | allocated | completing) return 0 ;; esac
  fi
  write_conf
  start_munge
  export SLURM_CONF="$CONF"
  running "$DIR/slurmctld.pid" slurmctld || /usr/sbin/slurmctld -f "$CONF" 9>&-
  running "$DIR/slurmd.pid" slurmd || /usr/sbin/slurmd -f "$CONF" 9>&-
  local state=""
  for _ in $(seq 1 120); do
    state="$(nodeState)"
    case "$state" in
      idle | mixed | allocated | completing) return 0 ;;
      # A node left down by an earlier run comes back (ReturnToService=2 does it on register).
      down* | drain*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  die "node $HOST is not idle after 60 s (sinfo: ${state:-no answer}); see $DIR/log/"
}

stop_one() {
  local pidfile="$1" program="$2"
  running "$pidfile" "$program" || return 0
  local pid
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    [ -d "/proc/$pid" ] || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  # Jobs still running would be lost with their node, and left RUNNING in the saved state (the next
  # start would wait on them): cancel them first. This is a test cluster: every job is a test's.
  if running "$DIR/slurmctld.pid" slurmctld; then
    SLURM_CONF="$CONF" scancel --full --quiet --user=root >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do
      [ -z "$(SLURM_CONF="$CONF" squeue --noheader --states=running,completing 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  stop_one "$DIR/slurmd.pid" slurmd
  stop_one "$DIR/slurmctld.pid" slurmctld
  stop_one "$MUNGE_SOCKET_DIR/munged.pid" munged
}

# One start or stop at a time (test files running in parallel may each ask for the cluster). The
# daemons are started with descriptor 9 closed: one that inherited it would hold the lock for as
# long as it runs, and every later start or stop would wait for ever.
lock() {
  mkdir -p "$(dirname "$DIR")"
  exec 9>"$DIR.lock"
  flock 9
}

case "${1:-}" in
  start)
    lock
    start
    ;;
  stop)
    lock
    stop
    ;;
  status)
    case "$(nodeState)" in idle | mixed | allocated | completing) exit 0 ;; *) exit 1 ;; esac
    ;;
  conf) echo "$CONF" ;;
  *)
    echo "usage: bash scripts/slurm-local.sh start|stop|status|conf" >&2
    exit 2
    ;;
esac
