"""Tollgate vs LiteLLM Proxy vs direct, measured side by side in one run.

Why one runner: numbers from different days or machines cannot be compared,
so every target is measured in the same run, one after another (never two at
once: the machine has 2 cores), against the same fake upstream, with the same
load generator, and reported in one table with PASS/MISS against the targets.

    python benchmarks/run.py            # ~10 s per load point, ~5 minutes
    python benchmarks/run.py --quick    # ~2-minute smoke run
    python benchmarks/run.py --targets direct,litellm --duration 20

Results: printed, and written to benchmarks/results/<timestamp>.json and .md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load
import servers

MASTER_KEY = "sk-bench-master-key-0000000000000000"
RESULTS = servers.HERE / "results"
MIB = 1024 * 1024
ALL_TARGETS = ("direct", "tollgate", "litellm")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~2-minute smoke run: short points, fewer streams")
    ap.add_argument("--duration", type=float, help="seconds per wrk load point (default 10, quick 3)")
    ap.add_argument("--targets", default=",".join(ALL_TARGETS), help="comma list of direct,tollgate,litellm")
    ap.add_argument("--concurrency", default="1,10,100", help="wrk connection counts")
    ap.add_argument("--workers", type=int, default=2, help="worker processes per proxy")
    ap.add_argument(
        "--slow-streams", type=int, default=1000, help="concurrent slow streams (0 = skip that test)"
    )
    ap.add_argument("--no-install", action="store_true", help="never install wrk or LiteLLM")
    ap.add_argument(
        "--startup-timeout", type=float, default=180.0, help="seconds to wait for a proxy to answer"
    )
    args = ap.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (3.0 if quick else 10.0)
    args.warmup = 2.0 if quick else 5.0
    args.conc = [int(c) for c in args.concurrency.split(",") if c]
    args.target_list = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.target_list) - set(ALL_TARGETS)
    if unknown:
        ap.error(f"unknown targets: {', '.join(sorted(unknown))}")
    # Streams: fast ones measure overhead (TTFC, gaps); slow ones measure holding many open.
    args.chunks, args.gap_ms = 20, 20.0
    args.streams_c1, args.streams_c10 = (8, 30) if quick else (30, 100)
    args.slow_chunks, args.slow_gap_ms = (5 if quick else 10), 1000.0
    return args


def raise_nofile() -> int:
    """1,000 streams need ~3,000 descriptors across client, proxy and upstream."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(want, 65536)), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ensure_wrk(allow_install: bool) -> None:
    if load.wrk_available():
        return
    if allow_install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("[wrk] not found: apt-get install -y wrk ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "install", "-y", "wrk"],
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "wrk"],
        ):
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
            if load.wrk_available():
                return
    sys.exit("wrk is required: install it with `sudo apt-get install -y wrk` (Debian/Ubuntu) and rerun")


def _cmd_output(cmd: list[str], cwd: Path | None = None, any_rc: bool = False) -> str:
    """First stdout line of a command ('' on failure; ``any_rc``: wrk --version exits 1)."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=cwd)
        text = out.stdout.strip() if (out.returncode == 0 or any_rc) else ""
        return text.splitlines()[0] if text else ""
    except (OSError, subprocess.SubprocessError):
        return ""


# ------------------------------------------------------------------ measuring


def measure(name, server, upstream, args, script) -> dict:
    """All load points against one running target. ``server`` is the process tree charged for CPU/RSS."""
    url = server.base_url
    out: dict = {"status": "measured", "points": [], "streams": []}
    warm = load.run_wrk(url, script, 10, args.warmup)
    if warm["ok_requests"] == 0:
        raise RuntimeError(f"warm-up got no successful response ({warm['errors']}):\n{server.log_tail()}")
    total_cpu = total_req = 0.0
    for conns in args.conc:
        cpu0, up0 = server.cpu(), upstream.cpu()
        point = load.run_wrk(url, script, conns, args.duration)
        cpu, up = server.cpu() - cpu0, upstream.cpu() - up0
        point["cpu_ms_per_req"] = round(cpu * 1000 / point["requests"], 3) if point["requests"] else None
        point["upstream_cpu_pct"] = round(100 * up / point["seconds"], 1) if point["seconds"] else None
        total_cpu, total_req = total_cpu + cpu, total_req + point["requests"]
        out["points"].append(point)
        print(
            f"  [{name}] c={conns:<4} {point['rps']:>9.1f} req/s  p50 {point['p50_ms']:.2f} ms  "
            f"p99 {point['p99_ms']:.2f} ms  cpu {point['cpu_ms_per_req']} ms/req  "
            f"errors {point['errors'] or 0}",
            flush=True,
        )
    out["cpu_ms_per_req"] = round(total_cpu * 1000 / total_req, 3) if total_req else None
    out["memory_after_load"] = server.memory()

    servers.configure_upstream(upstream, args.chunks, args.gap_ms)
    stream_timeout = args.chunks * args.gap_ms / 1000 + 30
    for conc, total in ((1, args.streams_c1), (10, args.streams_c10)):
        # Concurrent streams start spread over one stream's length, as independent clients would.
        ramp = args.chunks * args.gap_ms / 1000 if conc > 1 else 0.0
        res = load.run_streams(server.port, MASTER_KEY, conc, total, stream_timeout, ramp_s=ramp)
        res.pop("samples")
        out["streams"].append(res)
        print(
            f"  [{name}] streams c={conc:<3} TTFC p50 {_f(res['ttfc_p50_ms'])} ms  "
            f"gap p50 {_f(res['gap_p50_ms'])} p99 {_f(res['gap_p99_ms'])} ms  "
            f"errors {res['errors']} {res['error_samples'][:1]}",
            flush=True,
        )

    if args.slow_streams and name in ("direct", "tollgate"):
        out["slow_streams"] = slow_streams(name, server, upstream, args)
    out["memory_end"] = server.memory()
    return out


def slow_streams(name, server, upstream, args) -> dict:
    """Many long-lived streams at once: errors and the peak memory of the server tree."""
    servers.configure_upstream(upstream, args.slow_chunks, args.slow_gap_ms)
    try:
        timeout = args.slow_chunks * args.slow_gap_ms / 1000 + 60
        res = load.run_streams(
            server.port,
            MASTER_KEY,
            args.slow_streams,
            args.slow_streams,
            timeout,
            ramp_s=2.0,
            sampler=server.memory,
        )
    finally:
        servers.configure_upstream(upstream, args.chunks, args.gap_ms)
    samples = res.pop("samples")
    res["peak_rss"] = max((s["rss"] for s in samples), default=None)
    res["peak_pss"] = max((s["pss"] for s in samples), default=None)
    res["chunks"], res["gap_ms"] = args.slow_chunks, args.slow_gap_ms
    print(
        f"  [{name}] {res['streams']} slow streams: errors {res['errors']} {res['error_samples'][:2]}  "
        f"max open {res['max_open']}  peak RSS {_mib(res['peak_rss'])} MiB",
        flush=True,
    )
    return res


def start_target(name, args, tmp, config) -> servers.Server:
    if name == "tollgate":
        return servers.start_tollgate(tmp, config, MASTER_KEY, args.workers, args.startup_timeout)
    exe = servers.ensure_litellm(servers.HERE / ".venv-litellm", tmp, not args.no_install)
    return servers.start_litellm(exe, tmp, config, MASTER_KEY, args.workers, args.startup_timeout)


def run(args) -> dict:
    results: dict = {"meta": meta(args), "targets": {}}
    tmp = Path(tempfile.mkdtemp(prefix="tollgate-bench-"))
    results["meta"]["logs"] = str(tmp)
    try:
        upstream = servers.start_upstream(tmp, args.chunks, args.gap_ms)
        config = servers.write_config(tmp / "config.yaml", upstream.port, MASTER_KEY)
        script = load.write_wrk_script(tmp, MASTER_KEY)
        for name in args.target_list:
            print(f"[{name}] starting", flush=True)
            server = None
            try:
                server = upstream if name == "direct" else start_target(name, args, tmp, config)
                results["targets"][name] = measure(name, server, upstream, args, script)
                results["targets"][name]["startup_s"] = server.extra.get("startup_s")
            except servers.SkipTarget as exc:
                print(f"[{name}] SKIPPED: {exc}", flush=True)
                results["targets"][name] = {"status": "skipped", "reason": str(exc)}
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                print(f"[{name}] FAILED: {exc}", flush=True)
                results["targets"][name] = {"status": "failed", "reason": str(exc)}
            finally:
                if server is not None and server is not upstream:
                    server.stop()
    except KeyboardInterrupt:
        results["meta"]["interrupted"] = True
        print("\ninterrupted: stopping servers", flush=True)
    finally:
        servers.stop_all()
    return results


def meta(args) -> dict:
    litellm_py = servers.HERE / ".venv-litellm" / "bin" / "python"
    return {
        "timestamp": datetime.now().isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "wrk": " ".join(_cmd_output(["wrk", "--version"], any_rc=True).split()[:2]),
        "litellm": servers.LITELLM_VERSION if litellm_py.exists() else None,
        "tollgate_commit": _cmd_output(["git", "rev-parse", "--short", "HEAD"], servers.PROJECT),
        "settings": {
            k: getattr(args, k)
            for k in (
                "duration",
                "warmup",
                "conc",
                "workers",
                "chunks",
                "gap_ms",
                "streams_c1",
                "streams_c10",
            )
        }
        | {
            "slow_streams": args.slow_streams,
            "slow_chunks": args.slow_chunks,
            "slow_gap_ms": args.slow_gap_ms,
        },
    }


# ------------------------------------------------------------------ reporting


def _f(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _mib(v) -> str:
    return "-" if v is None else f"{v / MIB:.0f}"


def _measured(results: dict, name: str) -> dict | None:
    t = results["targets"].get(name)
    return t if t and t.get("status") == "measured" else None


def _point(t: dict | None, conns: int) -> dict | None:
    return next((p for p in t["points"] if p["connections"] == conns), None) if t else None


def _stream(t: dict | None, conc: int) -> dict | None:
    return next((s for s in t["streams"] if s["concurrency"] == conc), None) if t else None


def checks(results: dict) -> list[dict]:
    """Tollgate's targets; LiteLLM's value beside each for reference. None = not measured."""
    tg, ll, d = (_measured(results, n) for n in ("tollgate", "litellm", "direct"))

    def added(t, key_fn):
        a, b = key_fn(t), key_fn(d)
        return a - b if a is not None and b is not None else None

    def p50_c1(t):
        p = _point(t, 1)
        return p["p50_ms"] if p else None

    def ttfc_c1(t):
        s = _stream(t, 1)
        return s["ttfc_p50_ms"] if s else None

    def gap_ratio(t):
        s, base = _stream(t, 10), _stream(d, 10)
        if s and base and s["gap_p99_ms"] and base["gap_p99_ms"]:
            return s["gap_p99_ms"] / base["gap_p99_ms"]
        return None

    def rps100(t):
        p = _point(t, 100)
        return p["rps"] if p else None

    def slow(t):
        s = t.get("slow_streams") if t else None
        return s if s and s.get("peak_rss") is not None else None

    rows = []

    def row(label, goal, fn, ok, fmt, reference=True):
        val = fn(tg) if tg else None
        ref = fn(ll) if (ll and reference) else None
        rows.append(
            {
                "check": label,
                "goal": goal,
                "tollgate": fmt(val),
                "litellm": fmt(ref) if reference else "",
                "result": "n/a" if val is None else ("PASS" if ok(val) else "MISS"),
            }
        )

    row(
        "CPU per request (all wrk points)",
        "<= 3 ms",
        lambda t: t.get("cpu_ms_per_req"),
        lambda v: v <= 3,
        lambda v: f"{_f(v)} ms",
    )
    ratio = None
    if rps100(tg) and rps100(ll):
        ratio = rps100(tg) / rps100(ll)
    rows.append(
        {
            "check": "throughput at c=100 vs LiteLLM",
            "goal": ">= 10x",
            "tollgate": _f(ratio, 1) + "x",
            "litellm": f"{_f(rps100(ll), 1)} req/s",
            "result": "n/a" if ratio is None else ("PASS" if ratio >= 10 else "MISS"),
        }
    )
    row(
        "added p50 latency at c=1",
        "<= 3 ms",
        lambda t: added(t, p50_c1),
        lambda v: v <= 3,
        lambda v: f"{_f(v)} ms",
    )
    row(
        "added TTFC p50, 1 stream",
        "<= 3 ms",
        lambda t: added(t, ttfc_c1),
        lambda v: v <= 3,
        lambda v: f"{_f(v)} ms",
    )
    row(
        "chunk gap p99, 10 streams / direct's",
        "<= 1.5x",
        gap_ratio,
        lambda v: v <= 1.5,
        lambda v: f"{_f(v)}x",
    )
    row(
        f"{results['meta']['settings']['slow_streams']} slow streams: peak RSS, errors",
        "<= 1 GiB, 0 errors",
        slow,
        lambda s: s["peak_rss"] <= 1024 * MIB and s["errors"] == 0 and s["streams"] > 0,
        lambda s: "-" if s is None else f"{_mib(s['peak_rss'])} MiB, {s['errors']} errors",
        reference=False,
    )
    return rows


def markdown(results: dict) -> str:
    m, s = results["meta"], results["meta"]["settings"]
    d = _measured(results, "direct")
    lines = [
        f"# Tollgate benchmark {m['timestamp']}",
        "",
        f"{m['cpus']} CPUs, load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}; "
        f"Python {m['python']}; {m['wrk']}; LiteLLM {m['litellm'] or 'n/a'}; Tollgate commit "
        f"{m['tollgate_commit'] or 'none'}; {s['workers']} workers per proxy. Logs: `{m['logs']}`.",
        "",
    ]
    for name, t in results["targets"].items():
        if t["status"] != "measured":
            reason = t["reason"].strip().splitlines()
            lines.append(f"- **{name} {t['status'].upper()}**: {reason[0] if reason else ''}")
            lines += [f"  > {ln}" for ln in reason[1:12]]
    lines += [
        "",
        f"## Non-streamed (wrk, {s['duration']:.0f} s per point, closed loop)",
        "",
        "| target | conc | req/s | p50 ms | p99 ms | added p50 ms | CPU ms/req | upstream CPU % | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    measured = [(n, t) for n, t in results["targets"].items() if t["status"] == "measured"]
    for name, t in measured:
        for p in t["points"]:
            base = _point(d, p["connections"])
            add = p["p50_ms"] - base["p50_ms"] if base and name != "direct" else None
            lines.append(
                f"| {name} | {p['connections']} | {p['rps']:.0f} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} | "
                f"{_f(add)} | {_f(p['cpu_ms_per_req'], 3)} | {_f(p['upstream_cpu_pct'], 0)} | "
                f"{json.dumps(p['errors']) if p['errors'] else 0} |"
            )
    lines += [
        "",
        f"## Streaming ({s['chunks']} chunks {s['gap_ms']:.0f} ms apart upstream; new connection each)",
        "",
        "| target | conc | streams | TTFC p50 ms | TTFC p99 ms | added TTFC p50 ms | gap p50 ms "
        "| gap p99 ms | chunks seen | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, t in measured:
        for st in t["streams"]:
            base = _stream(d, st["concurrency"])
            add = (
                st["ttfc_p50_ms"] - base["ttfc_p50_ms"]
                if base and name != "direct" and st["ttfc_p50_ms"]
                else None
            )
            lines.append(
                f"| {name} | {st['concurrency']} | {st['streams']} | {_f(st['ttfc_p50_ms'])} | "
                f"{_f(st['ttfc_p99_ms'])} | {_f(add)} | {_f(st['gap_p50_ms'])} | {_f(st['gap_p99_ms'])} | "
                f"{','.join(map(str, st['chunks_per_stream']))} | {st['errors']} |"
            )
    lines += [
        "",
        "## Memory (whole process tree)",
        "",
        "| target | processes | RSS after load MiB | PSS after load MiB | start-up s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, t in measured:
        mem = t["memory_after_load"]
        lines.append(
            f"| {name} | {mem['procs']} | {_mib(mem['rss'])} | {_mib(mem['pss'])} | {_f(t['startup_s'], 1)} |"
        )
    slow_rows = [(n, t["slow_streams"]) for n, t in measured if t.get("slow_streams")]
    if slow_rows:
        lines += [
            "",
            "## Many slow streams at once",
            "",
            "| target | streams | chunks x gap | max open at once | errors | peak RSS MiB | peak PSS MiB "
            "| seconds |",
            "|---|---:|---|---:|---:|---:|---:|---:|",
        ]
        for name, sl in slow_rows:
            lines.append(
                f"| {name} | {sl['streams']} | {sl['chunks']} x {sl['gap_ms']:.0f} ms | {sl['max_open']} | "
                f"{sl['errors']} | {_mib(sl['peak_rss'])} | {_mib(sl['peak_pss'])} | {sl['seconds']} |"
            )
            if sl["error_samples"]:
                lines.append(f"|  | errors seen: {'; '.join(sl['error_samples'])[:300]} |||||||")
    lines += [
        "",
        "## Targets (Tollgate)",
        "",
        "| check | goal | Tollgate | LiteLLM (reference) | result |",
        "|---|---|---|---|---|",
    ]
    for c in results["checks"]:
        lines.append(f"| {c['check']} | {c['goal']} | {c['tollgate']} | {c['litellm']} | **{c['result']}** |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    nofile = raise_nofile()
    if args.slow_streams and nofile < 4 * args.slow_streams:
        print(f"warning: open-file limit {nofile} is low for {args.slow_streams} streams", flush=True)
    ensure_wrk(not args.no_install)
    started = time.monotonic()
    results = run(args)
    results["meta"]["wall_s"] = round(time.monotonic() - started, 1)
    results["checks"] = checks(results)
    text = markdown(results)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(results, indent=2, default=str))
    (RESULTS / f"{stamp}.md").write_text(text)
    print("\n" + text)
    print(f"written: {RESULTS / (stamp + '.json')} and .md ({results['meta']['wall_s']} s)")
    return 130 if results["meta"].get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
