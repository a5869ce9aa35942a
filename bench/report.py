#!/usr/bin/env python3
"""Turn the raw measurements of bench/run.sh into a Markdown table, and a
"Targets" section: the session-state guard's goals, from the same run.

usage: report.py RESULTS_DIR [--chart FILE.png]

With --chart it also draws the table as a PNG (python3-matplotlib): TPS of
each workload with the peers side by side, and the poolers' CPU per
transaction; without matplotlib it says so on stderr and draws nothing.

RESULTS_DIR holds:
  meta       key=value lines (date, versions, duration, repeat, targets; for
             the TLS workloads tls_key and tls_TARGET, what each negotiated)
  runs.tsv   target workload rep status tps txns cpu_ticks client_cpu_ticks
             pg_cpu_ticks p50_ms p99_ms (older files stop after cpu_ticks or
             client_cpu_ticks; "-" is not measured)
  idle.tsv   target rep status rss_before_kb rss_after_kb clients_ok
  syscalls.tsv  target rep status txns, then calls per transaction: read
             write epoll_wait epoll_ctl futex other total (-S 100 under strace)
"""
import os
import statistics
import sys

TARGETS = [("direct", "direct"), ("pgbouncer", "PgBouncer"), ("pgbouncer125", "PgBouncer 1.25"),
           ("pgcarrier", "pgcarrier"),
           ("pgcarrier_noguard", "pgcarrier, guard off"), ("pgcarrier_nostats", "pgcarrier, stats off"),
           ("builtin", "pgcarrier built-in")]
DEFAULT_TARGETS = "direct,pgbouncer,pgbouncer125,pgcarrier,pgcarrier_noguard,pgcarrier_nostats,builtin"
# The table's ratio columns: pgcarrier against each peer that ran.
RATIO_PEERS = [("pgbouncer", "pgcarrier/PgBouncer"), ("pgbouncer125", "pgcarrier/PgBouncer 1.25"),
               ("direct", "pgcarrier/direct")]
SYSCALL_GROUPS = ["read/recv", "write/writev/send", "epoll_wait", "epoll_ctl", "futex", "other", "total"]
# pgcarrier against the PgBouncers (the speed issue): TPS on these, p99 at
# 100 clients; reported, no goal.
PEER_TPS_WORKLOADS = ["S100", "S1000", "P100", "P1000", "E100", "E1000"]
PEER_P99_WORKLOADS = ["S100", "P100"]
WORKLOADS = [
    ("S8", "-S, 8 clients"),
    ("S100", "-S, 100 clients"),
    ("S1000", "-S, 1000 clients"),
    ("P100", "-S -M prepared, 100"),
    ("P1000", "-S -M prepared, 1000"),
    ("E100", "-S -M extended, 100"),
    ("E1000", "-S -M extended, 1000"),
    ("C8", "-S -C, 8 (connect per transaction)"),
    ("T8C", "TLS -S -C, 8 (TLS handshake + login per transaction)"),
    ("T100", "TLS -S, 100 clients"),
]
TLS_WORKLOADS = ("T8C", "T100")
CPU_ROWS = [("S100", "pooler CPU µs/txn, -S 100"), ("S1000", "pooler CPU µs/txn, -S 1000"),
            ("P100", "pooler CPU µs/txn, -S -M prepared 100"),
            ("P1000", "pooler CPU µs/txn, -S -M prepared 1000"),
            ("E100", "pooler CPU µs/txn, -S -M extended 100"),
            ("E1000", "pooler CPU µs/txn, -S -M extended 1000"),
            ("C8", "pooler CPU µs/txn, -S -C 8 (= per connection)"),
            ("T8C", "pooler CPU µs/txn, TLS -S -C 8 (= per TLS connection)"),
            ("T100", "pooler CPU µs/txn, TLS -S 100")]
# The client's own CPU (pgbench) where it limits what a pooler can show on
# a small machine: connection churn, with and without TLS.
CLIENT_CPU_ROWS = [("C8", "pgbench CPU µs/txn, -S -C 8"),
                   ("T8C", "pgbench CPU µs/txn, TLS -S -C 8")]
# The goals (session-state guard): -M prepared at least 1.25 x
# pgcarrier's own simple protocol; the guard costs -M simple at most 3 %.
PREPARED_GOAL = 1.25
GUARD_COST_GOAL = 0.03
STATS_COST_GOAL = 0.02
# The client TLS issue's goal: TLS connection churn (T8C) at least 1.5 x
# PgBouncer's TPS.
TLS_CHURN_GOAL = 1.5
# The TLS login issue's goal: pooler CPU per new TLS connection (T8C) at
# most 0.6 x PgBouncer 1.25's.
TLS_LOGIN_CPU_GOAL = 0.6
# The built-in issue's goal: built-in mode at least as fast as the
# standalone daemon, on every workload.
BUILTIN_GOAL = 1.00


def depth_targets(targets):
    """The pgcarrier_dN of a run (BENCH_PIPELINE_DEPTHS), by depth."""
    ds = [t for t in targets if t.startswith("pgcarrier_d") and t[len("pgcarrier_d"):].isdigit()]
    return sorted(ds, key=lambda t: int(t[len("pgcarrier_d"):]))


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


def ms(v):
    """Milliseconds with 2 significant decimals where they matter."""
    return "%.2f" % v if v < 10 else "%.1f" % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return "%.2f" % (a / b)


# One colour per target, the same in both panels.
COLOURS = {"direct": "#7f7f7f", "pgbouncer": "#d62728", "pgbouncer125": "#ff7f0e", "pgcarrier": "#1f77b4",
           "pgcarrier_noguard": "#9ecae1", "pgcarrier_nostats": "#c6dbef", "builtin": "#2ca02c"}


def write_chart(path, title, selected, names, workloads, tps_of, cpu_rows, cpu_of):
    """Grouped bars: TPS per workload (top) and pooler CPU µs/txn (bottom),
    one bar per target, the median of the repeats (tps_of and cpu_of give
    the table's (value, text) cells); a failed cell says "fail", one not
    run has no bar."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: python3-matplotlib is not installed: no chart", file=sys.stderr)
        return False
    cpu_rows = [(w, l) for w, l in cpu_rows if any(cpu_of(t, w)[0] is not None for t in selected)]
    panels = 2 if cpu_rows else 1
    fig, axes = plt.subplots(panels, 1, figsize=(12, 4.2 * panels + 0.6), squeeze=False)

    def bars(ax, rows, value, ylabel, fmt):
        n = len(selected)
        width = 0.8 / max(n, 1)
        for i, t in enumerate(selected):
            xs, ys = [], []
            for j, (wl, _label) in enumerate(rows):
                v, text = value(t, wl)
                x = j - 0.4 + width * (i + 0.5)
                if v is not None:
                    xs.append(x)
                    ys.append(v)
                elif text == "fail":
                    # a failed run is not a zero: say so where its bar would be
                    ax.annotate("fail", (x, 0), ha="center", va="bottom", fontsize=8,
                                color=COLOURS.get(t), xytext=(0, 3), textcoords="offset points")
            drawn = ax.bar(xs, ys, width, label=names[t], color=COLOURS.get(t))
            for rect, v in zip(drawn, ys):
                ax.annotate(fmt(v), (rect.get_x() + rect.get_width() / 2, rect.get_height()),
                            ha="center", va="bottom", fontsize=7, rotation=90,
                            xytext=(0, 2), textcoords="offset points")
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([label for _w, label in rows], fontsize=8, rotation=12, ha="right")
        ax.set_ylabel(ylabel)
        ax.margins(y=0.18)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, ncol=len(selected))

    bars(axes[0][0], workloads, tps_of, "TPS (higher is better)", lambda v: "{:,.0f}".format(v))
    axes[0][0].set_title(title, fontsize=10)
    if cpu_rows:
        poolers = [t for t in selected if t != "direct"]
        keep = selected[:]
        selected[:] = poolers
        bars(axes[1][0], [(w, l.replace("pooler CPU µs/txn, ", "")) for w, l in cpu_rows], cpu_of,
             "pooler CPU µs per transaction (lower is better)", lambda v: "%.1f" % v)
        selected[:] = keep
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main():
    args = sys.argv[1:]
    chart = None
    if "--chart" in args:
        i = args.index("--chart")
        chart = args[i + 1]
        del args[i:i + 2]
    d = args[0]
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
    sysc = load(os.path.join(d, "syscalls.tsv"))
    run_targets = meta.get("targets", DEFAULT_TARGETS).split(",")
    depths = depth_targets(run_targets)
    # pgcarrier_dN sit right after pgcarrier, in increasing depth
    all_targets = []
    for t, label in TARGETS:
        all_targets.append((t, label))
        if t == "pgcarrier":
            all_targets.extend((d, d) for d in depths)
    selected = [t for t, _ in all_targets if t in run_targets]
    workloads = [w for w in WORKLOADS if w[0] in meta.get("workloads", ",".join(k for k, _ in WORKLOADS)).split(",")]

    def tps_cell(target, wl):
        rs = [r for r in runs if r[0] == target and r[1] == wl]
        ok = [float(r[4]) for r in rs if r[3] == "ok"]
        return cell(ok, len(rs) - len(ok), len(rs), lambda v: "{:,.0f}".format(v))

    def cpu_of(r):
        """Pooler CPU µs per transaction of one run, or None."""
        if r[3] != "ok" or r[6] in ("", "-") or int(r[5]) <= 0:
            return None
        return int(r[6]) * 1e6 / clk / int(r[5])

    def cpu_cell(target, wl):
        rs = [r for r in runs if r[0] == target and r[1] == wl]
        ok = [c for c in map(cpu_of, rs) if c is not None]
        return cell(ok, len(rs) - len(ok), len(rs), lambda v: "%.1f" % v)

    def field(r, i):
        """Column i of a runs.tsv row as a float, or None ("-", missing)."""
        if len(r) <= i or r[i] in ("", "-"):
            return None
        return float(r[i])

    def pg_cpu_cell(target, wl):
        """PostgreSQL's CPU (postmaster and all its children) µs/txn."""
        rs = [r for r in runs if r[0] == target and r[1] == wl]
        ok = [field(r, 8) * 1e6 / clk / int(r[5]) for r in rs
              if r[3] == "ok" and field(r, 8) is not None and int(r[5]) > 0]
        return cell(ok, len(rs) - len(ok), len(rs), lambda v: "%.1f" % v)

    def latency_cell(target, wl):
        """"p50 / p99" ms, each the median over repeats; the value is p99."""
        rs = [r for r in runs if r[0] == target and r[1] == wl]
        ok = [(field(r, 9), field(r, 10)) for r in rs
              if r[3] == "ok" and field(r, 9) is not None and field(r, 10) is not None]
        if not rs:
            return None, "—"
        if not ok:
            return None, "fail"
        p50, p99 = statistics.median(a for a, _ in ok), statistics.median(b for _, b in ok)
        text = "%s / %s" % (ms(p50), ms(p99))
        if len(rs) > len(ok):
            text += " (%d/%d failed)" % (len(rs) - len(ok), len(rs))
        return p99, text

    def client_cpu_cell(target, wl):
        rs = [r for r in runs if r[0] == target and r[1] == wl]
        ok = [int(r[7]) * 1e6 / clk / int(r[5]) for r in rs
              if r[3] == "ok" and len(r) > 7 and r[7] not in ("", "-") and int(r[5]) > 0]
        return cell(ok, len(rs) - len(ok), len(rs), lambda v: "%.1f" % v)

    def by_rep(target, wl):
        """{rep: tps} of the successful runs; and how many runs there were."""
        rs = [r for r in runs if r[0] == target and r[1] == wl]
        return {r[2]: float(r[4]) for r in rs if r[3] == "ok"}, len(rs)

    def idle_cell(target):
        rs = [r for r in idle if r[0] == target]
        ok = [(int(r[4]) - int(r[3])) * 1024 / int(r[5]) for r in rs
              if r[2] == "ok" and int(r[5]) > 0]
        return cell(ok, len(rs) - len(ok), len(rs), lambda v: "{:,.0f} B".format(v))

    names = dict(all_targets)
    if meta.get("pgbouncer125"):
        names["pgbouncer125"] = meta["pgbouncer125"]   # "PgBouncer 1.25.2"
    head = ["workload"] + [names[t] for t in selected]
    peers = [(t, h) for t, h in RATIO_PEERS if "pgcarrier" in selected and t in selected]
    head += [h for _t, h in peers]

    lines = []
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))

    def emit(label, getter, direct_ratio=True):
        vals = {t: getter(t) for t in selected}
        row = [label] + [vals[t][1] for t in selected]
        for t, _h in peers:
            row.append(ratio(vals["pgcarrier"][0], vals[t][0]) if direct_ratio or t != "direct" else "—")
        lines.append("| " + " | ".join(row) + " |")

    has_latency = any(field(r, 9) is not None for r in runs)
    for wl, label in workloads:
        emit(label + " (TPS)", lambda t, wl=wl: tps_cell(t, wl))
        if has_latency:
            emit("  latency p50 / p99 ms", lambda t, wl=wl: latency_cell(t, wl))
    has_pg_cpu = any(field(r, 8) is not None for r in runs)
    cpu_labels = dict(CPU_ROWS)
    for wl, wlabel in workloads:
        if wl in cpu_labels and any(r[1] == wl and r[0] != "direct" for r in runs):
            emit(cpu_labels[wl], lambda t, wl=wl: (None, "—") if t == "direct" else cpu_cell(t, wl),
                 direct_ratio=False)
        if has_pg_cpu:
            emit("PostgreSQL CPU µs/txn, " + wlabel, lambda t, wl=wl: pg_cpu_cell(t, wl))
    for wl, label in CLIENT_CPU_ROWS:
        if any(w == wl for w, _ in workloads) and any(r[1] == wl and len(r) > 7 for r in runs):
            emit(label, lambda t, wl=wl: client_cpu_cell(t, wl), direct_ratio=False)
    if idle:
        emit("RSS per idle client (%s clients)" % meta.get("idle_clients", "?"),
             lambda t: (None, "—") if t == "direct" else idle_cell(t), direct_ratio=False)

    out = []
    out.append("# pgcarrier benchmark, %s" % meta.get("date", "?"))
    out.append("")
    out.append("Machine: %s cores, %s, load average %s at start. %s; %s%s; pgcarrier %s (workers = %s)." % (
        meta.get("cores", "?"), meta.get("kernel", "?"), meta.get("loadavg", "?"), meta.get("postgres", "?"),
        meta.get("pgbouncer", "?"),
        "; %s (BENCH_PGBOUNCER125, same settings)" % meta["pgbouncer125"] if meta.get("pgbouncer125") else "",
        meta.get("pgcarrier", "?"), meta.get("workers", "?")))
    out.append("pgbench -S -n -j 2 over TCP 127.0.0.1, -T %s (-T %s at 1000 clients), "
               "median of %s run(s); poolers in transaction mode, pool size 8, "
               "reaching PostgreSQL over its Unix socket. TPS excludes initial "
               "connection time, except -C (includes reconnects)." % (
                   meta.get("duration", "?"), meta.get("duration_1000", "?"), meta.get("repeat", "?")))
    if any(w in TLS_WORKLOADS for w, _ in workloads):
        out.append("TLS workloads: pgbench with sslmode=require (no certificate check); every target "
                   "has the same self-signed %s certificate and key, and the same authentication "
                   "(trust) as the plain workloads; poolers with client_tls_sslmode = require, "
                   "PostgreSQL (direct) with ssl = on. -C makes a full TLS handshake per transaction "
                   "(libpq resumes no sessions)." % meta.get("tls_key", "?"))
        for t in selected:
            if "tls_" + t in meta:
                out.append("- TLS negotiated by %s: %s" % (names[t], meta["tls_" + t]))
    if "pgcarrier_noguard" in selected:
        out.append("pgcarrier, guard off: the same binary and settings with session_guard = off; "
                   "it runs the simple-protocol workloads only (— elsewhere).")
    if "builtin" in selected:
        out.append("pgcarrier built-in: the same PostgreSQL with shared_preload_libraries = "
                   "'pgcarrier' (%s); its pooler on its own port with the standalone's settings, "
                   "up only for its turn (pgcarrier.enabled); every target ran on this server with "
                   "the extension preloaded." % meta.get("builtin", "?"))
    if "pgcarrier_nostats" in selected:
        out.append("pgcarrier, stats off: the same binary and settings with stats = 0 (nothing "
                   "counted on the forwarding path); it runs -S at 100 clients only.")
    out.append("")
    out.extend(lines)
    out.append("")
    out.append("Ratios: above 1 is better for TPS; below 1 is better for latency (the ratio is "
               "p99's), CPU and memory.")
    if has_latency:
        out.append("Latency: pgbench's per-transaction log (--log), percentiles of the logged "
                   "transactions (nearest rank), median over repeats; logged: a fraction %s of the "
                   "transactions, %s at 1000 clients (--sampling-rate). With -C the latency "
                   "leaves out the connection (pgbench starts a transaction's clock once connected)." % (
                       meta.get("latency_sample", "?"), meta.get("latency_sample_1000", "?")))
    if has_pg_cpu:
        out.append("PostgreSQL CPU: utime + stime of the postmaster and all its children (live ones "
                   "from /proc, exited ones from the postmaster's cutime + cstime), before and after "
                   "each run, per transaction; background processes included; for built-in, the "
                   "pooler's daemon is not counted (it is in pooler CPU).")

    # ------------------------------------------------- system calls
    sys_targets = [t for t in selected if any(r[0] == t for r in sysc)]
    if sys_targets:
        out.append("")
        out.append("### Pooler system calls per transaction (-S, 100 clients, %s s under strace -c -f)"
                   % meta.get("syscalls", "?"))
        out.append("")
        out.append("| system call | " + " | ".join(names[t] for t in sys_targets) + " |")
        out.append("|" + "---|" * (len(sys_targets) + 1))

        def sys_cell(target, i):
            vals = [float(r[4 + i]) for r in sysc if r[0] == target and r[2] == "ok"
                    and len(r) > 4 + i and r[4 + i] != "-"]
            if not vals:
                return "fail"
            return "%.2f" % statistics.median(vals)

        for i, g in enumerate(SYSCALL_GROUPS):
            out.append("| %s | %s |" % (g, " | ".join(sys_cell(t, i) for t in sys_targets)))
        out.append("")
        out.append("An extra run per pooler after the measured ones (its TPS, slowed by strace, is "
                   "not reported): calls of all the pooler's threads divided by the transactions "
                   "pgbench counted; they include the 100 logins and logouts.")

    # ------------------------------------------------------------ Targets
    # Each figure is the median over repeats of a ratio taken within one
    # repeat: guard on and off run back to back, so a pair shares the
    # machine's mood of the moment; across repeats it may drift by ~20 %.
    def paired(num, den, f):
        """f(tps of num, tps of den) per repeat where both runs succeeded.
        num, den: (target, workload). Returns (median or None, values, text):
        text is None when there is a median, else "not run" or "fail (...)"."""
        a, na = by_rep(*num)
        b, nb = by_rep(*den)
        if na == 0 or nb == 0:
            return None, [], "not run"
        vals = [f(a[k], b[k]) for k in sorted(a) if k in b and b[k] > 0]
        if vals:
            return statistics.median(vals), vals, None
        why = ["%s on %s" % (w, names[t]) for t, w in (num, den) if not by_rep(t, w)[0]]
        return None, [], "fail (%s failed)" % " and ".join(why) if why else "fail"

    def spread(vals, total, fmt):
        """'; 3 repeats: a to b; 1 failed' or ''."""
        text = ""
        if len(vals) > 1:
            text = "; %d repeats: %s to %s" % (len(vals), fmt(min(vals)), fmt(max(vals)))
        if total > len(vals):
            text += "; %d of %d repeats failed" % (total - len(vals), total)
        return text

    def tps_text(target, wl):
        v = tps_cell(target, wl)[0]
        return "{:,.0f}".format(v) if v is not None else "fail"

    # ----------------------------------------------- pipelining depth
    # pgcarrier_dN against pgcarrier (depth 0) and PgBouncer 1.25, per
    # workload: TPS ratios within a repeat (each workload runs on pgcarrier
    # and right after on every pgcarrier_dN), then the median over repeats.
    # Latency, CPU and system calls per depth are the main table's columns.
    shown = [d for d in depths if d in selected]
    if shown and "pgcarrier" in selected:
        peer = "pgbouncer125" if "pgbouncer125" in selected else (
            "pgbouncer" if "pgbouncer" in selected else None)
        out.append("")
        out.append("### Pipelining depth (server_pipeline_depth; pgcarrier = 0)")
        out.append("")
        head = ["workload", "pgcarrier TPS"] + ["%s TPS (× depth 0%s)" % (
            d, ", × %s" % names[peer] if peer else "") for d in shown]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for wl, wlabel in workloads:
            row = [wlabel, tps_cell("pgcarrier", wl)[1]]
            for d in shown:
                text = tps_cell(d, wl)[1]
                v0 = paired((d, wl), ("pgcarrier", wl), lambda x, y: x / y)[0]
                parts = ["%.2f" % v0 if v0 is not None else "—"]
                if peer:
                    vp = paired((d, wl), (peer, wl), lambda x, y: x / y)[0]
                    parts.append("%.2f" % vp if vp is not None else "—")
                row.append("%s (%s)" % (text, ", ".join(parts)))
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        out.append("Ratios are medians over repeats of TPS ratios within one repeat (above 1: "
                   "the depth is faster). A depth whose cells read 'fail' everywhere was "
                   "refused by this pgcarrier (no server_pipeline_depth setting).")

    trows = []
    reps = int(meta.get("repeat", "1") or 1)
    if "pgcarrier" in selected:
        for p, s_, n in (("P100", "S100", 100), ("P1000", "S1000", 1000)):
            label = "pgcarrier: -M prepared / -M simple, %d clients" % n
            goal = "≥ %.2f" % PREPARED_GOAL
            v, vals, text = paired(("pgcarrier", p), ("pgcarrier", s_), lambda x, y: x / y)
            if v is None:
                trows.append([label, goal, text, "—" if text == "not run" else "missed"])
                continue
            text = "%.2f (%s / %s TPS%s)" % (
                v, tps_text("pgcarrier", p), tps_text("pgcarrier", s_),
                spread(vals, reps, lambda x: "%.2f" % x))
            trows.append([label, goal, text, "met" if v >= PREPARED_GOAL and len(vals) == reps else "missed"])
    if "pgcarrier" in selected and "pgcarrier_noguard" in selected:
        for s_, n in (("S100", 100), ("S1000", 1000)):
            label = "guard cost on -M simple, %d clients: 1 − on/off" % n
            goal = "≤ %.0f %%" % (GUARD_COST_GOAL * 100)
            v, vals, text = paired(("pgcarrier", s_), ("pgcarrier_noguard", s_), lambda x, y: 1 - x / y)
            if v is None:
                trows.append([label, goal, text, "—" if text == "not run" else "missed"])
                continue
            con, coff = cpu_cell("pgcarrier", s_)[0], cpu_cell("pgcarrier_noguard", s_)[0]
            cpu = "; CPU %s vs %s µs/txn" % tuple("%.1f" % c if c is not None else "—" for c in (con, coff))
            text = "%.1f %% (%s vs %s TPS%s%s)" % (
                v * 100, tps_text("pgcarrier", s_), tps_text("pgcarrier_noguard", s_), cpu,
                spread(vals, reps, lambda x: "%.1f %%" % (x * 100)))
            trows.append([label, goal, text, "met" if v <= GUARD_COST_GOAL and len(vals) == reps else "missed"])

    if "pgcarrier" in selected and "pgcarrier_nostats" in selected:
        s_ = "S100"
        label = "statistics cost on -S, 100 clients: 1 − on/off"
        goal = "< %.0f %%" % (STATS_COST_GOAL * 100)
        v, vals, text = paired(("pgcarrier", s_), ("pgcarrier_nostats", s_), lambda x, y: 1 - x / y)
        if v is None:
            trows.append([label, goal, text, "—" if text == "not run" else "missed"])
        else:
            con, coff = cpu_cell("pgcarrier", s_)[0], cpu_cell("pgcarrier_nostats", s_)[0]
            cpu = "; CPU %s vs %s µs/txn" % tuple("%.1f" % c if c is not None else "—" for c in (con, coff))
            text = "%.1f %% (%s vs %s TPS%s%s)" % (
                v * 100, tps_text("pgcarrier", s_), tps_text("pgcarrier_nostats", s_), cpu,
                spread(vals, reps, lambda x: "%.1f %%" % (x * 100)))
            trows.append([label, goal, text, "met" if v < STATS_COST_GOAL and len(vals) == reps else "missed"])

    if "pgcarrier" in selected and "builtin" in selected:
        for wl, wlabel in workloads:
            label = "built-in / standalone pgcarrier, %s" % wlabel
            goal = "≥ %.2f" % BUILTIN_GOAL
            v, vals, text = paired(("builtin", wl), ("pgcarrier", wl), lambda x, y: x / y)
            if v is None:
                trows.append([label, goal, text, "—" if text == "not run" else "missed"])
                continue
            cb, cs = cpu_cell("builtin", wl)[0], cpu_cell("pgcarrier", wl)[0]
            cpu = "; CPU %s vs %s µs/txn" % tuple("%.1f" % c if c is not None else "—" for c in (cb, cs))
            text = "%.2f (%s / %s TPS%s%s)" % (
                v, tps_text("builtin", wl), tps_text("pgcarrier", wl), cpu,
                spread(vals, reps, lambda x: "%.2f" % x))
            trows.append([label, goal, text, "met" if v >= BUILTIN_GOAL and len(vals) == reps else "missed"])

    if "pgcarrier" in selected and "pgbouncer" in selected:
        for wl, label, goal in (("T8C", "pgcarrier / PgBouncer, TLS -S -C, 8 clients", TLS_CHURN_GOAL),
                                ("T100", "pgcarrier / PgBouncer, TLS -S, 100 clients", None)):
            if not any(w == wl for w, _ in workloads):
                continue
            gtext = "≥ %.2f" % goal if goal else "(none)"
            v, vals, text = paired(("pgcarrier", wl), ("pgbouncer", wl), lambda x, y: x / y)
            if v is None:
                trows.append([label, gtext, text, "—" if text == "not run" or not goal else "missed"])
                continue
            con, cbo = cpu_cell("pgcarrier", wl)[0], cpu_cell("pgbouncer", wl)[0]
            cpu = "; CPU %s vs %s µs/txn" % tuple("%.1f" % c if c is not None else "—" for c in (con, cbo))
            text = "%.2f (%s / %s TPS%s%s)" % (
                v, tps_text("pgcarrier", wl), tps_text("pgbouncer", wl), cpu,
                spread(vals, reps, lambda x: "%.2f" % x))
            status = "—" if not goal else ("met" if v >= goal and len(vals) == reps else "missed")
            trows.append([label, gtext, text, status])

    def cpu_by_rep(target, wl):
        rs = [r for r in runs if r[0] == target and r[1] == wl]
        return {r[2]: cpu_of(r) for r in rs if cpu_of(r) is not None}, len(rs)

    if "pgcarrier" in selected and any(w == "T8C" for w, _ in workloads):
        for peer, goal in (("pgbouncer125", TLS_LOGIN_CPU_GOAL), ("pgbouncer", None)):
            if peer not in selected:
                continue
            label = "pooler CPU per TLS connection, pgcarrier / %s (TLS -S -C, 8)" % names[peer]
            gtext = "≤ %.2f" % goal if goal else "(none)"
            a, na = cpu_by_rep("pgcarrier", "T8C")
            b, nb = cpu_by_rep(peer, "T8C")
            vals = [a[k] / b[k] for k in sorted(a) if k in b and b[k] > 0]
            if not vals:
                trows.append([label, gtext, "not run" if na == 0 or nb == 0 else "fail",
                              "—" if not goal or na == 0 or nb == 0 else "missed"])
                continue
            v = statistics.median(vals)
            con, cpe = cpu_cell("pgcarrier", "T8C")[0], cpu_cell(peer, "T8C")[0]
            text = "%.2f (%s vs %s µs per connection%s)" % (
                v, "%.0f" % con if con is not None else "—", "%.0f" % cpe if cpe is not None else "—",
                spread(vals, reps, lambda x: "%.2f" % x))
            status = "—" if not goal else ("met" if v <= goal and len(vals) == reps else "missed")
            trows.append([label, gtext, text, status])

    for peer in ("pgbouncer125", "pgbouncer"):
        if "pgcarrier" not in selected or peer not in selected:
            continue
        pname = names[peer]
        for wl in PEER_TPS_WORKLOADS:
            if not any(w == wl for w, _ in workloads):
                continue
            label = "pgcarrier / %s TPS, %s" % (pname, dict(WORKLOADS)[wl])
            v, vals, text = paired(("pgcarrier", wl), (peer, wl), lambda x, y: x / y)
            if v is None:
                trows.append([label, "(none)", text, "—"])
                continue
            con, cbo = cpu_cell("pgcarrier", wl)[0], cpu_cell(peer, wl)[0]
            cpu = "; CPU %s vs %s µs/txn" % tuple("%.1f" % c if c is not None else "—" for c in (con, cbo))
            trows.append([label, "(none)", "%.2f (%s / %s TPS%s%s)" % (
                v, tps_text("pgcarrier", wl), tps_text(peer, wl), cpu,
                spread(vals, reps, lambda x: "%.2f" % x)), "—"])
        for wl in PEER_P99_WORKLOADS:
            if not any(w == wl for w, _ in workloads):
                continue
            label = "pgcarrier / %s p99 latency, %s" % (pname, dict(WORKLOADS)[wl])
            a, b = latency_cell("pgcarrier", wl), latency_cell(peer, wl)
            if a[0] is None or b[0] is None:
                trows.append([label, "(none)", "fail" if "fail" in (a[1], b[1]) else "not run", "—"])
                continue
            trows.append([label, "(none)", "%s (%s vs %s ms; below 1: pgcarrier's is shorter)" % (
                ratio(a[0], b[0]), ms(a[0]), ms(b[0])), "—"])

    if trows:
        out.append("")
        out.append("## Targets")
        out.append("")
        out.append("| target | goal | measured | |")
        out.append("|---|---|---|---|")
        for r in trows:
            out.append("| " + " | ".join(r) + " |")
        out.append("")
        out.append("A target with a failed run in any repeat is missed. "
                   "Each figure is the median over repeats of the ratio within one repeat; the TPS "
                   "in brackets are the table's medians (guard: on vs off; CPU: pgcarrier's own; "
                   "TLS: pgcarrier vs PgBouncer; built-in vs standalone). "
                   "Guard on and off run back to back against the same PostgreSQL; PgBouncer and "
                   "pgcarrier run one after the other in the same round.")
        if reps < 3 and ("pgcarrier_noguard" in selected or "pgcarrier_nostats" in selected):
            out.append("Runs on this machine vary by up to ~20 %%: %d repeat(s) cannot settle a "
                       "3 %% goal; use BENCH_REPEAT=3 or more." % reps)
    print("\n".join(out))

    if chart:
        write_chart(chart, "pgcarrier benchmark, %s (median of %s run(s), -T %s)" % (
                        meta.get("date", "?"), meta.get("repeat", "?"), meta.get("duration", "?")),
                    selected, names, workloads, tps_cell,
                    [r for r in CPU_ROWS if any(w == r[0] for w, _ in workloads)], cpu_cell)


if __name__ == "__main__":
    main()
