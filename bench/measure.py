#!/usr/bin/env python3
"""Small measurements for bench/run.sh, one subcommand each; each prints one
tab-separated line for run.sh to store.

  measure.py latency PREFIX
      pgbench's per-transaction logs (--log --log-prefix=PREFIX: one file per
      thread, PREFIX.PID and PREFIX.PID.N): "p50_ms p99_ms transactions", the
      percentiles of the logged per-transaction latencies (nearest rank), or
      "- - 0" when nothing was logged.

  measure.py pg-cpu POSTMASTER_PID [EXCLUDE_PID ...]
      CPU ticks PostgreSQL has used so far: the postmaster's utime + stime +
      cutime + cstime (cutime/cstime hold the children it has reaped, e.g.
      the backends of pgbench -C) plus utime + stime of its live children
      (every backend and auxiliary process). Grandchildren are not counted:
      the built-in pooler's daemon is the supervisor's child, and its CPU
      (pooler CPU in the report) stays out, also in the supervisor's cutime.
      EXCLUDE_PID: children not to count (run.sh passes the built-in
      daemon's pid, in case it ever becomes the postmaster's child).

  measure.py syscalls STRACE_C_FILE TRANSACTIONS
      strace -c's summary as calls per transaction, in run.sh's groups:
      "read write epoll_wait epoll_ctl futex other total".
"""
import glob
import os
import sys

# strace -c names -> the report's groups; anything else is "other".
SYSCALL_GROUPS = {
    "read": "read", "readv": "read", "recv": "read", "recvfrom": "read", "recvmsg": "read",
    "recvmmsg": "read",
    "write": "write", "writev": "write", "send": "write", "sendto": "write", "sendmsg": "write",
    "sendmmsg": "write",
    "epoll_wait": "epoll_wait", "epoll_pwait": "epoll_wait", "epoll_pwait2": "epoll_wait",
    "epoll_ctl": "epoll_ctl",
    "futex": "futex",
}
GROUP_ORDER = ["read", "write", "epoll_wait", "epoll_ctl", "futex", "other"]


def latency(prefix):
    lat = []
    for path in glob.glob(glob.escape(prefix) + ".*"):
        with open(path) as f:
            for line in f:
                # client_id transaction_no time_us script_no epoch epoch_us [lag]
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[2].isdigit():   # "failed"/"skipped" are no latency
                    lat.append(int(parts[2]))
    if not lat:
        print("-\t-\t0")
        return
    lat.sort()

    def pct(p):   # nearest rank: the smallest value with at least p of them at or below it
        k = max(0, min(len(lat) - 1, -(-len(lat) * p // 100) - 1))
        return lat[k] / 1000.0

    print("%.3f\t%.3f\t%d" % (pct(50), pct(99), len(lat)))


def stat_fields(pid):
    """/proc/PID/stat's fields after "pid (comm)", or None if it is gone."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()   # fields 3.. ; comm may hold spaces and ")"


def pg_cpu(postmaster, exclude):
    pm = stat_fields(postmaster)
    if pm is None:
        print("-")
        return
    # fields 14-17 (utime stime cutime cstime) are [11:15] after "pid (comm) "
    total = sum(int(x) for x in pm[11:15])
    for d in os.listdir("/proc"):
        if not d.isdigit() or d == postmaster or d in exclude:
            continue
        f = stat_fields(d)
        if f is not None and f[1] == postmaster:   # field 4: ppid
            total += int(f[11]) + int(f[12])
    print(total)


def syscalls(path, txns):
    calls = dict.fromkeys(GROUP_ORDER, 0)
    with open(path) as f:
        for line in f:
            parts = line.split()
            # "% time seconds usecs/call calls [errors] syscall"; skip the
            # header, the dashes and strace's own "total" line
            if len(parts) < 5 or not parts[3].isdigit() or parts[-1] == "total":
                continue
            calls[SYSCALL_GROUPS.get(parts[-1], "other")] += int(parts[3])
    total = sum(calls.values())
    if txns <= 0 or total == 0:
        print("\t".join(["-"] * (len(GROUP_ORDER) + 1)))
        return
    print("\t".join("%.2f" % (calls[g] / txns) for g in GROUP_ORDER) + "\t%.2f" % (total / txns))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "latency":
        latency(args[0])
    elif cmd == "pg-cpu":
        pg_cpu(args[0], set(args[1:]))
    elif cmd == "syscalls":
        syscalls(args[0], int(args[1]))
    else:
        sys.exit("measure.py: unknown command %r" % cmd)


if __name__ == "__main__":
    main()
