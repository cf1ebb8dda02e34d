"""The soak's arithmetic and its report, kept pure (no processes, no clock) so the rules that
decide its verdicts are unit-tested: per-minute buckets, latency percentiles, errors inside and
outside the restart window, RSS growth per process and CPU per minute across a restart."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import percentile

ROLES = ("supervisor", "gateway", "worker")
RSS_GROWTH_GOAL = 5.0  # % between minute 2 and the last minute (issue 16)
Window = tuple[float, float]  # [start, end] in time.monotonic() seconds


@dataclass(frozen=True, slots=True)
class Request:
    """One finished request: when it ended, how long it took, "OK" or the failure's name."""

    done: float
    ms: float
    outcome: str

    @property
    def sent(self) -> float:
        return self.done - self.ms / 1e3


@dataclass(frozen=True, slots=True)
class Sample:
    """The hub's process tree at one moment, per role: pid, RSS (MB), CPU seconds so far."""

    t: float
    pid: dict[str, int]
    rss_mb: dict[str, float]
    cpu_s: dict[str, float]
    busy_s: float = 0.0  # the whole machine's busy CPU seconds since boot


@dataclass
class MinuteStats:
    minute: int  # 1-based
    ok: int = 0
    errors: int = 0  # outside every restart window: each one misses the target
    errors_in_window: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p99_ms: float | None = None


def read_trace(path: Path) -> list[Request]:
    """bench/loadgen.py's (and the image client's) --trace CSV: t,ms,outcome per line."""
    out = []
    for line in path.read_text().splitlines():
        t, ms, outcome = line.split(",", 2)
        out.append(Request(float(t), float(ms), outcome))
    return out


def minute_of(t: float, t0: float, minutes: int) -> int:
    """0-based minute of the run for time t; stragglers after the end count in the last one."""
    return min(minutes - 1, max(0, int((t - t0) // 60)))


def overlaps(request: Request, windows: Iterable[Window]) -> bool:
    """Whether the request was in flight at any moment of a restart window."""
    return any(request.sent <= end and request.done >= start for start, end in windows)


def per_minute(
    requests: Iterable[Request], t0: float, minutes: int, windows: Sequence[Window]
) -> list[MinuteStats]:
    """Per minute of the run (by when each request ended): successes with their p50/p99, and
    failures split into those that touched a restart window and the rest."""
    stats = [MinuteStats(m + 1) for m in range(minutes)]
    latencies: list[list[float]] = [[] for _ in range(minutes)]
    for request in requests:
        m = minute_of(request.done, t0, minutes)
        if request.outcome == "OK":
            stats[m].ok += 1
            latencies[m].append(request.ms)
            continue
        if overlaps(request, windows):
            stats[m].errors_in_window += 1
        else:
            stats[m].errors += 1
        stats[m].kinds[request.outcome] = stats[m].kinds.get(request.outcome, 0) + 1
    for s, values in zip(stats, latencies, strict=True):
        s.p50_ms, s.p99_ms = percentile(values, 50), percentile(values, 99)
    return stats


def rss_in_minute(samples: Sequence[Sample], role: str, t0: float, minute: int) -> float | None:
    """Median RSS (MB) of `role` over the samples taken during 1-based `minute`: one figure a
    minute that a single sample caught mid-burst cannot move."""
    start = t0 + (minute - 1) * 60
    values = [s.rss_mb[role] for s in samples if start <= s.t < start + 60 and role in s.rss_mb]
    return statistics.median(values) if values else None


def rss_growth(
    samples: Sequence[Sample], t0: float, minutes: int, base_minute: int = 2
) -> dict[str, dict[str, float | None]]:
    """Per role: RSS at `base_minute` (the first minute is start-up and warm-up), in the last
    minute, and the growth between them in %. A process that was restarted in between is
    compared as the role it plays: a restarted worker must come back to the same footprint."""
    base_minute = min(base_minute, minutes - 1) if minutes > 1 else 1
    out: dict[str, dict[str, float | None]] = {}
    for role in ROLES:
        base = rss_in_minute(samples, role, t0, base_minute)
        end = rss_in_minute(samples, role, t0, minutes)
        growth = (end / base - 1) * 100 if base and end is not None else None
        out[role] = {
            "base_minute": base_minute,
            "base_mb": base,
            "end_mb": end,
            "growth_pct": growth,
        }
    return out


def growth_per_process(samples: Sequence[Sample], t0: float, minutes: int) -> list[dict[str, Any]]:
    """RSS growth of each process of a role that was restarted, over its own life: from the
    minute after it appeared (at least minute 2) to the last minute it was seen. A restart
    resets memory, so comparing roles alone would let it hide growth before the kill."""
    out = []
    for role in ROLES:
        lives: dict[int, list[int]] = {}
        for s in samples:
            if role in s.pid:
                lives.setdefault(s.pid[role], []).append(minute_of(s.t, t0, minutes) + 1)
        if len(lives) < 2:
            continue
        for pid, seen in lives.items():
            end = max(seen)
            base = min(max(2, min(seen) + 1), end)
            mine = [s for s in samples if s.pid.get(role) == pid]
            base_mb = rss_in_minute(mine, role, t0, base)
            end_mb = rss_in_minute(mine, role, t0, end)
            growth = (end_mb / base_mb - 1) * 100 if base_mb and end_mb is not None else None
            out.append(
                {"role": role, "pid": pid, "from_minute": base, "to_minute": end}
                | {"base_mb": base_mb, "end_mb": end_mb, "growth_pct": growth}
            )
    return out


def cpu_per_minute(samples: Sequence[Sample], t0: float, minutes: int) -> list[dict[str, float]]:
    """Per minute, CPU use in % of one core per role and the whole machine's (all cores). A
    role whose pid changed between two samples was restarted: its new process's counter is
    what it used since then (never a negative difference)."""
    used = [dict.fromkeys([*ROLES, "machine"], 0.0) for _ in range(minutes)]
    seconds = [0.0] * minutes
    for before, after in itertools.pairwise(samples):
        m = minute_of(after.t, t0, minutes)
        seconds[m] += after.t - before.t
        used[m]["machine"] += max(0.0, after.busy_s - before.busy_s)
        for role, now in after.cpu_s.items():
            same = before.pid.get(role) == after.pid.get(role)
            used[m][role] += max(0.0, now - before.cpu_s.get(role, 0.0)) if same else now
    return [
        {k: round(v / s * 100, 1) if s else 0.0 for k, v in u.items()}
        for u, s in zip(used, seconds, strict=True)
    ]


def split_per_minute(
    readings: Sequence[tuple[float, dict[str, int]]], t0: float, minutes: int
) -> list[dict[str, int]]:
    """Requests served per version per minute from the gateway's cumulative counts."""
    out: list[dict[str, int]] = [{} for _ in range(minutes)]
    for (_, before), (t, after) in itertools.pairwise(readings):
        bucket = out[minute_of(t, t0, minutes)]
        for version, count in after.items():
            bucket[version] = bucket.get(version, 0) + max(0, count - before.get(version, 0))
    return out


def schedule(minutes: int, events_at: Sequence[float] | None) -> dict[str, float]:
    """Minutes into the run of the three events, in order: canary (a new MLP version and a
    split), hot reload (a changed model file) and the worker's SIGKILL. By default at 30, 40
    and 50 % of the run, so the first minutes are a clean baseline and the last ones show
    whether the box came back to it."""
    at = list(events_at) if events_at else [minutes * f for f in (0.3, 0.4, 0.5)]
    if len(at) != 3 or sorted(at) != at or at[0] <= 0 or at[-1] >= minutes:
        raise ValueError(f"events at {at}: want 3 increasing minutes inside (0, {minutes})")
    return dict(zip(("canary", "reload", "kill"), at, strict=True))


def totals(stats: dict[str, list[MinuteStats]]) -> dict[str, int]:
    flat = [s for rows in stats.values() for s in rows]
    return {
        "ok": sum(s.ok for s in flat),
        "errors_outside": sum(s.errors for s in flat),
        "errors_in_window": sum(s.errors_in_window for s in flat),
    }


# --- markdown ----------------------------------------------------------------------------
def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _mb(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def render(result: dict[str, Any]) -> str:
    """The markdown report from the JSON the soak writes (so a saved run can be re-rendered)."""
    info, minutes = result["info"], result["minutes"]
    stats = {w: [MinuteStats(**s) for s in rows] for w, rows in result["per_minute"].items()}
    total, growth = totals(stats), result["rss_growth"]
    lines = [
        f"# Soak: {minutes} min of mixed load, {info['date']}, commit {info['commit']}"
        f"{info.get('dirty', '')}",
        "",
        f"`{result['command']}` on {info['cores']} cores ({info['cpu']}), "
        f"onnxruntime {info['onnxruntime']}; RSS sampled every {result['sample_s']:g} s.",
        "",
        "| workload | path | concurrency | rate /s |",
        "|---|---|---:|---:|",
        *(
            f"| {w['name']} | {w['path']} | {w['concurrency']} | {w['rate']:g} |"
            for w in result["workloads"]
        ),
        "",
        "## Targets",
        "",
        "| target | measured | goal | verdict |",
        "|---|---:|---:|---|",
        f"| errors outside the restart window | {total['errors_outside']} | 0 | "
        f"{'met' if total['errors_outside'] == 0 else '**missed**'} |",
    ]
    for role in ROLES:
        g = growth[role]
        lines.append(f"| {role} RSS, minute {g['base_minute']} -> {minutes} | {_growth_cells(g)} |")
    for g in growth_per_process([Sample(**x) for x in result["samples"]], result["t0"], minutes):
        lines.append(
            f"| {g['role']} pid {g['pid']} RSS, minute {g['from_minute']} -> "
            f"{g['to_minute']} | {_growth_cells(g)} |"
        )
    lines += [
        "",
        f"{total['ok']:,} requests succeeded; {total['errors_in_window']} failed inside the "
        f"restart window, {total['errors_outside']} outside it.",
        "",
        "## Events",
        "",
        "| at | event | detail |",
        "|---|---|---|",
        *(f"| {_clock(e['at_s'])} | {e['event']} | {e['detail']} |" for e in result["events"]),
        "",
        "## Per minute",
        "",
    ]
    names = list(stats)
    for title, key in (("p50 ms", "p50_ms"), ("p99 ms", "p99_ms")):
        lines += [f"| minute | {' | '.join(f'{n} {title}' for n in names)} |"]
        lines += ["|---:|" + "---:|" * len(names)]
        for m in range(minutes):
            lines.append(
                f"| {m + 1} | " + " | ".join(_ms(getattr(stats[n][m], key)) for n in names) + " |"
            )
        lines.append("")
    lines += [
        "Requests per minute, ok / failed outside the window / failed inside it, and CPU "
        "(% of one core; machine: all cores, other tenants included; the load processes used "
        f"{result.get('loadgen_cpu_pct', 0):.0f} % of a core on average):",
        "",
        f"| minute | {' | '.join(names)} | mlp served v1 / v2 | supervisor | gateway | worker "
        "| machine |",
        "|---:|" + "---:|" * (len(names) + 5),
    ]
    for m in range(minutes):
        cells = [
            f"{stats[n][m].ok} / {stats[n][m].errors} / {stats[n][m].errors_in_window}"
            for n in names
        ]
        split = result["mlp_split"][m]
        cpu = result["cpu"][m]
        lines.append(
            f"| {m + 1} | {' | '.join(cells)} | {split.get('1', 0)} / {split.get('2', 0)} | "
            + " | ".join(f"{cpu[k]:.0f}" for k in (*ROLES, "machine"))
            + " |"
        )
    kinds: dict[str, int] = {}
    for rows in stats.values():
        for s in rows:
            for kind, n in s.kinds.items():
                kinds[kind] = kinds.get(kind, 0) + n
    if kinds:
        lines += [
            "",
            "Failures by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
        ]
    lines += [
        "",
        "## RSS per process (MB, median of the minute's samples)",
        "",
        "| minute | supervisor | gateway | worker | worker pid |",
        "|---:|---:|---:|---:|---|",
    ]
    samples = [Sample(**s) for s in result["samples"]]
    for m in range(minutes):
        pids = sorted(
            {
                p
                for s in samples
                if minute_of(s.t, result["t0"], minutes) == m
                if (p := s.pid.get("worker"))
            }
        )
        rss = [rss_in_minute(samples, role, result["t0"], m + 1) for role in ROLES]
        lines.append(
            f"| {m + 1} | {' | '.join(_mb(v) for v in rss)} | {', '.join(map(str, pids))} |"
        )
    if result.get("anomalies"):
        lines += ["", "Hub log warnings and errors:", "", *(f"- {a}" for a in result["anomalies"])]
    return "\n".join(lines) + "\n"


def _growth_cells(g: dict[str, Any]) -> str:
    """The measured, goal and verdict cells of one RSS growth row."""
    pct = g["growth_pct"]
    verdict = "-" if pct is None else "met" if pct < RSS_GROWTH_GOAL else "**missed**"
    measured = (
        "-" if pct is None else f"{pct:+.1f} % ({_mb(g['base_mb'])} -> {_mb(g['end_mb'])} MB)"
    )
    return f"{measured} | < {RSS_GROWTH_GOAL:g} % | {verdict}"
