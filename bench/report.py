#!/usr/bin/env python3
"""Turn the raw measurements of bench/run.sh into a Markdown table.

usage: report.py RESULTS_DIR

RESULTS_DIR holds:
  meta       key=value lines (date, versions, duration, repeat, targets)
  runs.tsv   target workload rep status tps txns cpu_ticks
  idle.tsv   target rep status rss_before_kb rss_after_kb clients_ok
"""
import os
import statistics
import sys

TARGETS = [("direct", "direct"), ("pgbouncer", "PgBouncer"), ("pgcarrier", "pgcarrier")]
WORKLOADS = [
    ("S8", "-S, 8 clients"),
    ("S100", "-S, 100 clients"),
    ("S1000", "-S, 1000 clients"),
    ("P100", "-S -M prepared, 100"),
    ("E100", "-S -M extended, 100"),
    ("C8", "-S -C, 8 (connect per transaction)"),
]
CPU_ROWS = [("S100", "pooler CPU µs/txn, -S 100"), ("S1000", "pooler CPU µs/txn, -S 1000")]


def load(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if line:
                    rows.append(line.split("\t"))
    return rows


def cell(values, failures, total, fmt):
    """Median of the successful repeats; 'fail' when none succeeded."""
    if total == 0:
        return None, "—"
    if not values:
        return None, "fail"
    m = statistics.median(values)
    text = fmt(m)
    if failures:
        text += " (%d/%d failed)" % (failures, total)
    return m, text


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return "%.2f" % (a / b)


def main():
    d = sys.argv[1]
    meta = {}
    if os.path.exists(os.path.join(d, "meta")):
        with open(os.path.join(d, "meta")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    meta[k] = v
    clk = float(meta.get("clk_tck", "100"))
    runs = load(os.path.join(d, "runs.tsv"))
    idle = load(os.path.join(d, "idle.tsv"))
    selected = [t for t, _ in TARGETS if t in meta.get("targets", "direct,pgbouncer,pgcarrier").split(",")]
    workloads = [w for w in WORKLOADS if w[0] in meta.get("workloads", ",".join(k for k, _ in WORKLOADS)).split(",")]

    def tps_cell(target, wl):
        rs = [r for r in runs if r[0] == target and r[1] == wl]
        ok = [float(r[4]) for r in rs if r[3] == "ok"]
        return cell(ok, len(rs) - len(ok), len(rs), lambda v: "{:,.0f}".format(v))

    def cpu_cell(target, wl):
        rs = [r for r in runs if r[0] == target and r[1] == wl]
        ok = [int(r[6]) * 1e6 / clk / int(r[5]) for r in rs
              if r[3] == "ok" and r[6] not in ("", "-") and int(r[5]) > 0]
        return cell(ok, len(rs) - len(ok), len(rs), lambda v: "%.1f" % v)

    def idle_cell(target):
        rs = [r for r in idle if r[0] == target]
        ok = [(int(r[4]) - int(r[3])) * 1024 / int(r[5]) for r in rs
              if r[2] == "ok" and int(r[5]) > 0]
        return cell(ok, len(rs) - len(ok), len(rs), lambda v: "{:,.0f} B".format(v))

    names = dict(TARGETS)
    head = ["workload"] + [names[t] for t in selected]
    both = "pgcarrier" in selected
    if both and "pgbouncer" in selected:
        head.append("pgcarrier/PgBouncer")
    if both and "direct" in selected:
        head.append("pgcarrier/direct")

    lines = []
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))

    def emit(label, getter, direct_ratio=True):
        vals = {t: getter(t) for t in selected}
        row = [label] + [vals[t][1] for t in selected]
        if both and "pgbouncer" in selected:
            row.append(ratio(vals["pgcarrier"][0], vals["pgbouncer"][0]))
        if both and "direct" in selected:
            row.append(ratio(vals["pgcarrier"][0], vals["direct"][0]) if direct_ratio else "—")
        lines.append("| " + " | ".join(row) + " |")

    for wl, label in workloads:
        emit(label + " (TPS)", lambda t, wl=wl: tps_cell(t, wl))
    for wl, label in CPU_ROWS:
        if any(w == wl for w, _ in workloads):
            emit(label, lambda t, wl=wl: (None, "—") if t == "direct" else cpu_cell(t, wl),
                 direct_ratio=False)
    if idle:
        emit("RSS per idle client (%s clients)" % meta.get("idle_clients", "?"),
             lambda t: (None, "—") if t == "direct" else idle_cell(t), direct_ratio=False)

    out = []
    out.append("# pgcarrier benchmark, %s" % meta.get("date", "?"))
    out.append("")
    out.append("Machine: %s cores, %s, load average %s at start. %s; %s; pgcarrier %s (workers = %s)." % (
        meta.get("cores", "?"), meta.get("kernel", "?"), meta.get("loadavg", "?"), meta.get("postgres", "?"),
        meta.get("pgbouncer", "?"), meta.get("pgcarrier", "?"), meta.get("workers", "?")))
    out.append("pgbench -S -n -j 2 over TCP 127.0.0.1, -T %s (-T %s at 1000 clients), "
               "median of %s run(s); poolers in transaction mode, pool size 8, "
               "reaching PostgreSQL over its Unix socket. TPS excludes initial "
               "connection time, except -C (includes reconnects)." % (
                   meta.get("duration", "?"), meta.get("duration_1000", "?"), meta.get("repeat", "?")))
    out.append("")
    out.extend(lines)
    out.append("")
    out.append("Ratios: above 1 is better for TPS; below 1 is better for CPU and memory.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
