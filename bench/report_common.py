"""Shared by the serving benchmark reports (bench/serve_mlp_report.py,
bench/serve_transformer_report.py): file and command helpers, number
formatting, the wrk (BENCH_WRK line of bench/infer*.lua) and hey parsers,
machine facts, the "machine not idle" note and the p99-vs-throughput plot.
"""

import os
import platform
import re
import subprocess


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def run(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"({e})"


def which(name):
    return any(os.access(os.path.join(d, name), os.X_OK)
               for d in os.environ.get("PATH", "").split(os.pathsep))


def fmt(x, digits=0):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if not a or not b:
        return "–"
    r = a / b
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.3f}×"


def read_status(work):
    """status.txt (NAME<TAB>ok|failed<TAB>reason) -> {name: (status, reason)}."""
    status = {}
    for line in read(os.path.join(work, "status.txt")).splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            status[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
    return status


def command_lines(work):
    """commands.txt (LABEL<TAB>command) as the lines of a sh code block."""
    out = []
    for line in read(os.path.join(work, "commands.txt")).splitlines():
        label, _, cmd = line.partition("\t")
        out += [f"# {label}", cmd]
    return out


# ---------------------------------------------------------------- parsers
def parse_wrk(text):
    """The BENCH_WRK line printed by the done() of bench/infer*.lua."""
    m = re.search(r"^BENCH_WRK (.*)$", text, re.M)
    if not m:
        return None
    v = {k: int(x) for k, x in (item.split("=", 1) for item in m.group(1).split())}
    secs = v["duration_us"] / 1e6
    return {
        "requests": v["requests"],
        "rps": v["requests"] / secs if secs > 0 else 0.0,
        "socket_errors": v["connect"] + v["read"] + v["write"] + v["timeout"],
        "socket_detail": f"connect {v['connect']}, read {v['read']}, write {v['write']}, timeout {v['timeout']}",
        "bad_status": v["status"],
        "p50_ms": v["lat_p50_us"] / 1000,
        "p90_ms": v["lat_p90_us"] / 1000,
        "p99_ms": v["lat_p99_us"] / 1000,
        "tool_failed": "wrk exit status" in text,
    }


def wrk_problem(w):
    """Why a wrk result is not a result, or None."""
    if w is None or w["tool_failed"]:
        return "wrk did not produce a result"
    if w["socket_errors"] or w["bad_status"]:
        return (f"wrk saw {w['bad_status']} non-2xx/3xx responses and "
                f"{w['socket_errors']} socket errors ({w['socket_detail']})")
    if w["requests"] == 0:
        return "wrk completed no requests"
    return None


def parse_hey(text):
    if "Summary:" not in text:
        return None
    out = {"tool_failed": "hey exit status" in text}
    m = re.search(r"Requests/sec:\s+([0-9.]+)", text)
    out["rps"] = float(m.group(1)) if m else 0.0
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s*{pct}% in ([0-9.]+) secs", text, re.M)
        out[f"p{pct}_ms"] = float(m.group(1)) * 1000 if m else None
    codes = {}
    sec = re.search(r"Status code distribution:\n((?:\s+\[\d+\].*\n?)*)", text)
    if sec:
        for code, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", sec.group(1)):
            codes[int(code)] = codes.get(int(code), 0) + int(n)
    out["codes"] = codes
    out["responses"] = sum(codes.values())
    out["non2xx"] = sum(n for c, n in codes.items() if not 200 <= c < 300)
    errs = 0
    detail = []
    sec = re.search(r"Error distribution:\n((?:\s+\[\d+\].*\n?)*)", text)
    if sec:
        for n, msg in re.findall(r"\[(\d+)\]\s+(.*)", sec.group(1)):
            errs += int(n)
            detail.append(f"{n}x {msg.strip()[:160]}")
    out["errors"] = errs
    out["error_detail"] = detail
    return out


def hey_problem(h):
    """Why a hey result is not a result, or None."""
    if h is None or h["tool_failed"]:
        return "hey did not produce a result"
    if h["non2xx"] or h["errors"]:
        return (f"hey saw {h['non2xx']} non-2xx responses and {h['errors']} errors "
                f"({'; '.join(h['error_detail'][:3])})")
    if h["responses"] == 0:
        return "hey got no responses"
    return None


# ---------------------------------------------------------------- machine
def machine_base():
    """[(key, value)]: nproc, CPU, memory, kernel, OS, the libblas.so.3 in use."""
    cpu = "unknown"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = "unknown"
    m = re.search(r"MemTotal:\s+(\d+) kB", read("/proc/meminfo"))
    if m:
        mem = f"{int(m.group(1)) / 1024 / 1024:.1f} GiB"
    osr = re.search(r'^PRETTY_NAME="?([^"\n]*)', read("/etc/os-release"), re.M)
    return [
        ("nproc", run(["nproc"])),
        ("CPU", cpu),
        ("memory", mem),
        ("kernel", f"{platform.system()} {platform.release()}"),
        ("OS", osr.group(1) if osr else "unknown"),
        ("libblas.so.3", os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")),
    ]


def load_lines(work):
    """Load averages at start, after the load (if recorded) and now."""
    return [
        ("load average (1/5/15 min) at start", read(os.path.join(work, "loadavg.start")).strip()),
        ("load average (1/5/15 min) after the load", read(os.path.join(work, "loadavg.end")).strip() or "–"),
        ("load average (1/5/15 min) at report time", " ".join(read("/proc/loadavg").split()[:3])),
    ]


def busy_note(work, ncpu):
    """A warning when the 1-minute load average at start (loadavg.start) or
    after the load (loadavg.end) was above ncpu / 4, or ""."""
    notes = []
    for when, suffix in (("started", "start"), ("finished its load", "end")):
        try:
            load1 = float(read(os.path.join(work, f"loadavg.{suffix}")).split()[0])
        except (IndexError, ValueError):
            continue
        if load1 > ncpu / 4:
            procs = [l.strip() for l in read(os.path.join(work, f"busy.{suffix}")).splitlines() if l.strip()]
            s = f"1-minute load average {load1:.2f} on {ncpu} CPUs when the run {when}"
            if procs:
                s += " (busiest: " + "; ".join(f"`{x}`" for x in procs[:3]) + ")"
            notes.append(s)
    if not notes:
        return ""
    return ("> **Machine not idle:** " + "; ".join(notes) + ". Other processes took CPU from "
            "every point (not necessarily evenly), so absolute numbers are low and the ratios "
            "noisier than usual; rerun on an idle machine before quoting them.")


# ---------------------------------------------------------------- plot
def plot_sweep(path, series, title, xlabel, vline=None, xlog=False, legend="upper left"):
    """p99 latency (log scale) against throughput, one line per series.

    series: [(label, [(throughput, p99_ms, connections), ...]), ...]; points
    with a missing value are dropped. vline: (x, label) for a ceiling, or None.
    xlog: log-scale throughput axis; legend: matplotlib legend location.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    styles = ("o-", "s-", "^-", "D-", "v-")
    for (label, pts), style in zip(series, styles * 4):
        pts = [q for q in pts if q[0] and q[1] is not None]
        if not pts:
            continue
        ax.plot([q[0] for q in pts], [q[1] for q in pts], style, label=label)
        for x, y, c in pts:
            ax.annotate(f"c={c}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if vline:
        ax.axvline(vline[0], color="grey", linestyle="--", label=vline[1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("p99 latency (ms)")
    ax.set_yscale("log")
    if xlog:
        ax.set_xscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc=legend)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
