"""The benchmark report: the targets checked (PASS/MISS) and the Markdown tables.

Kept apart from run.py, which measures: this module only reads the results dictionary.
"""

from __future__ import annotations

import json

MIB = 1024 * 1024
NOISY_PCT = 25.0  # other processes' CPU (% of one core) above which a point counts as noisy


def _f(v, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _mib(v) -> str:
    return "-" if v is None else f"{v / MIB:.0f}"


def _measured(results: dict, name: str) -> dict | None:
    t = results["targets"].get(name)
    return t if t and t.get("status") == "measured" else None


def _point(t: dict | None, conns: int) -> dict | None:
    return next((p for p in t["points"] if p["connections"] == conns), None) if t else None


def _stream(t: dict | None, conc: int, gap: float | None = None) -> dict | None:
    """The stream run at ``conc`` with the upstream gap ``gap`` (default: the configured, non-zero one)."""
    if not t:
        return None
    runs = [s for s in t["streams"] if s["concurrency"] == conc]
    if gap is None:
        return next((s for s in runs if s["upstream_gap_ms"]), None)
    return next((s for s in runs if s["upstream_gap_ms"] == gap), None)


def checks(results: dict) -> list[dict]:
    """Tollgate's targets, LiteLLM's value beside each for reference; "noisy" when a point they
    rest on was measured while other processes were busy."""
    tg, ll, d = (_measured(results, n) for n in ("tollgate", "litellm", "direct"))

    def stat(record, key):
        return record.get(key) if record else None

    def diff(a, b):
        return a - b if a is not None and b is not None else None

    def ratio(a, b):
        return a / b if a and b else None

    def noisy(*records):
        return any(r and r.get("other_cpu_pct", 0) > NOISY_PCT for r in records)

    rows = []

    def row(label, goal, val, ok, fmt, ref=None, records=()):
        result = "n/a" if val is None else ("PASS" if ok(val) else "MISS")
        if val is not None and noisy(*records):
            result += " (noisy)"
        rows.append({"check": label, "goal": goal, "tollgate": fmt(val), "litellm": ref or "", "result": result})

    def ms(v):
        return f"{_f(v)} ms"

    row(
        "CPU per request (all wrk points)",
        "<= 3 ms",
        stat(tg, "cpu_ms_per_req"),
        lambda v: v <= 3,
        ms,
        ms(stat(ll, "cpu_ms_per_req")),
    )
    tg100, ll100 = _point(tg, 100), _point(ll, 100)
    row(
        "req/s at c=100 vs LiteLLM",
        ">= 10x",
        ratio(stat(tg100, "rps"), stat(ll100, "rps")),
        lambda v: v >= 10,
        lambda v: f"{_f(v, 1)}x",
        f"{_f(stat(ll100, 'rps'), 1)} req/s",
        (tg100, ll100),
    )
    d1 = _point(d, 1)
    tg1, ll1 = _point(tg, 1), _point(ll, 1)
    row(
        "added p50 latency at c=1",
        "<= 3 ms",
        diff(stat(tg1, "p50_ms"), stat(d1, "p50_ms")),
        lambda v: v <= 3,
        ms,
        ms(diff(stat(ll1, "p50_ms"), stat(d1, "p50_ms"))),
        (tg1, d1),
    )
    ds, tgs, lls = _stream(d, 1), _stream(tg, 1), _stream(ll, 1)
    row(
        "added TTFC p50, 1 stream",
        "<= 3 ms",
        diff(stat(tgs, "ttfc_p50_ms"), stat(ds, "ttfc_p50_ms")),
        lambda v: v <= 3,
        ms,
        ms(diff(stat(lls, "ttfc_p50_ms"), stat(ds, "ttfc_p50_ms"))),
        (tgs, ds),
    )
    ds, tgs, lls = _stream(d, 10), _stream(tg, 10), _stream(ll, 10)
    row(
        "chunk gap p99 at 10 streams / direct's",
        "<= 1.5x",
        ratio(stat(tgs, "gap_p99_ms"), stat(ds, "gap_p99_ms")),
        lambda v: v <= 1.5,
        lambda v: f"{_f(v)}x",
        f"{_f(ratio(stat(lls, 'gap_p99_ms'), stat(ds, 'gap_p99_ms')))}x",
        (tgs, ds),
    )
    slow = stat(tg, "slow_streams")
    row(
        f"{results['meta']['settings']['slow_streams']} slow streams",
        "<= 1 GiB RSS, 0 errors, all open at once",
        slow if slow and slow.get("peak_rss") is not None else None,
        lambda s: s["peak_rss"] <= 1024 * MIB and s["errors"] == 0 and 0 < s["streams"] == s["max_open"],
        lambda s: "-" if s is None else f"{_mib(s['peak_rss'])} MiB, {s['errors']} errors, {s['max_open']} open",
    )
    vk = _measured(results, "tollgate-vkey")
    if vk is not None:
        vk1, vk100 = _point(vk, 1), _point(vk, 100)
        row(
            "virtual key with limits: added p50 at c=1",
            "<= 3 ms",
            diff(stat(vk1, "p50_ms"), stat(d1, "p50_ms")),
            lambda v: v <= 3,
            ms,
            records=(vk1, d1),
        )
        row("virtual key with limits: CPU per request", "<= 3 ms", stat(vk, "cpu_ms_per_req"), lambda v: v <= 3, ms)
        row(
            "virtual key with limits: req/s at c=100 vs LiteLLM",
            ">= 10x",
            ratio(stat(vk100, "rps"), stat(ll100, "rps")),
            lambda v: v >= 10,
            lambda v: f"{_f(v, 1)}x",
            records=(vk100, ll100),
        )
    return rows


def markdown(results: dict) -> str:
    m, s = results["meta"], results["meta"]["settings"]
    d = _measured(results, "direct")
    lines = [
        f"# Tollgate benchmark {m['timestamp']}",
        "",
        f"{m['cpus']} CPUs, load average at start {', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}"
        f" (end {', '.join(f'{x:.2f}' for x in m.get('loadavg_at_end', ()))}); "
        f"Python {m['python']}; {m['wrk']}; LiteLLM {m['litellm'] or 'n/a'}; Tollgate commit "
        f"{m['tollgate_commit'] or 'none'}{' + uncommitted changes' if m.get('tollgate_tree_dirty') else ''}; "
        f"{s['workers']} workers per proxy. Logs: `{m['logs']}`.",
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
        "| target | conc | req/s | p50 ms | p99 ms | added p50 ms | CPU ms/req | upstream CPU % "
        "| wrk+runner CPU % | other CPU % | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    measured = [(n, t) for n, t in results["targets"].items() if t["status"] == "measured"]
    for name, t in measured:
        for p in t["points"]:
            base = _point(d, p["connections"])
            add = p["p50_ms"] - base["p50_ms"] if base and name != "direct" else None
            lines.append(
                f"| {name} | {p['connections']} | {p['rps']:.0f} | {p['p50_ms']:.2f} | {p['p99_ms']:.2f} | "
                f"{_f(add)} | {_f(p['cpu_ms_per_req'], 3)} | {_f(p['upstream_cpu_pct'], 0)} | "
                f"{_f(p.get('wrk_and_runner_cpu_pct'), 0)} | {_f(p.get('other_cpu_pct'), 0)} | "
                f"{json.dumps(p['errors']) if p['errors'] else 0} |"
            )
    lines += [
        "",
        f"## Streaming ({s['chunks']} chunks per stream, new connection each, streams back to back)",
        "",
        "| target | conc | upstream gap ms | streams | TTFC p50 ms | TTFC p99 ms | added TTFC p50 ms "
        "| gap p50 ms | gap p99 ms | chunks seen | other CPU % | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for name, t in measured:
        for st in t["streams"]:
            base = _stream(d, st["concurrency"], st["upstream_gap_ms"])
            add = st["ttfc_p50_ms"] - base["ttfc_p50_ms"] if base and name != "direct" and st["ttfc_p50_ms"] else None
            lines.append(
                f"| {name} | {st['concurrency']} | {st['upstream_gap_ms']:.0f} | {st['streams']} | "
                f"{_f(st['ttfc_p50_ms'])} | "
                f"{_f(st['ttfc_p99_ms'])} | {_f(add)} | {_f(st['gap_p50_ms'])} | {_f(st['gap_p99_ms'])} | "
                f"{','.join(map(str, st['chunks_per_stream']))} | {_f(st.get('other_cpu_pct'), 0)} | "
                f"{st['errors']} |"
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
        lines.append(f"| {name} | {mem['procs']} | {_mib(mem['rss'])} | {_mib(mem['pss'])} | {_f(t['startup_s'], 1)} |")
    slow_rows = [(n, t["slow_streams"]) for n, t in measured if t.get("slow_streams")]
    if slow_rows:
        lines += [
            "",
            "## Many slow streams at once",
            "",
            "| target | streams | chunks x gap | max open at once | errors | peak RSS MiB | peak PSS MiB | seconds |",
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
    if any("noisy" in c["result"] for c in results["checks"]):
        lines += [
            "",
            f"(noisy): a point this check rests on was measured while processes outside the benchmark used"
            f" more than {NOISY_PCT:.0f}% of a core (column `other CPU %`): rerun on a quiet machine.",
        ]
    lines.append("")
    lines += _ledger_lines(results.get("ledger") or [])
    return "\n".join(lines)


def _ledger_lines(ledger: list[dict]) -> list[str]:
    """The settle write timed alone (benchmarks/ledger_insert.py)."""
    if not ledger:
        return []
    lines = [
        "",
        "## Settling's durable write, alone (benchmarks/ledger_insert.py)",
        "",
        "`plain`: the usage row's INSERT (no limits, master key, or the Redis path). `limited`: a key with "
        "limits on the database path, the scope rows' UPDATE and the INSERT in one transaction.",
        "",
        "| database | shape | p50 µs | p99 µs | mean µs | admit+settle CPU µs |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for run in ledger:
        if "failed" in run:
            lines.append(f"| {run['database']} | FAILED | {run['failed'][:200]} | | | |")
            continue
        for shape in ("plain", "limited"):
            r = run[shape]
            lines.append(
                f"| {run['database']} | {shape} | {r['p50_us']} | {r['p99_us']} | {r['mean_us']} "
                f"| {r['admit_and_settle_cpu_us']} |"
            )
    return lines
