"""The soak's verdicts come from these rules (bench/soak_report.py, pure): which minute a
request belongs to, which failures the restart window excuses, how RSS growth and CPU are read
across a worker restart, and the loadgen's pacing."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from bench import soak_report as sr
from bench.loadgen import next_due

T0 = 1000.0


def req(at: float, ms: float = 10.0, outcome: str = "OK") -> sr.Request:
    """A request that ended `at` seconds into the run."""
    return sr.Request(T0 + at, ms, outcome)


def test_requests_fall_in_the_minute_they_ended_and_stragglers_in_the_last() -> None:
    stats = sr.per_minute(
        [req(0.5), req(59.9), req(60.0), req(185.0), req(-1.0)], T0, minutes=3, windows=[]
    )
    assert [s.ok for s in stats] == [3, 1, 1]
    assert [s.minute for s in stats] == [1, 2, 3]


def test_percentiles_per_minute_are_of_successes_only() -> None:
    minute = [req(1, ms=float(ms)) for ms in range(1, 101)] + [req(2, 5000.0, "UNAVAILABLE")]
    (stats,) = sr.per_minute(minute, T0, minutes=1, windows=[])
    assert (stats.p50_ms, stats.p99_ms) == (50.0, 99.0)
    assert stats.ok == 100 and stats.errors == 1 and stats.kinds == {"UNAVAILABLE": 1}


def test_restart_window_excuses_only_failures_in_flight_during_it() -> None:
    window = (T0 + 100.0, T0 + 110.0)
    requests = [
        req(105.0, 1.0, "UNAVAILABLE"),  # inside
        req(100.5, 2000.0, "503"),  # sent before the kill, ended inside
        req(112.0, 3000.0, "UNAVAILABLE"),  # sent inside, ended after
        req(111.0, 500.0, "UNAVAILABLE"),  # sent and ended after the window: counts
        req(50.0, 10.0, "INTERNAL"),  # before the kill: counts
    ]
    stats = sr.per_minute(requests, T0, minutes=2, windows=[window])
    assert [s.errors_in_window for s in stats] == [0, 3]
    assert [s.errors for s in stats] == [1, 1]
    assert sr.totals({"w": stats}) == {"ok": 0, "errors_outside": 2, "errors_in_window": 3}


def sample(at: float, worker: float, pid: int = 7, cpu: float = 0.0) -> sr.Sample:
    return sr.Sample(
        T0 + at,
        {"supervisor": 1, "gateway": 2, "worker": pid},
        {"supervisor": 40.0, "gateway": 80.0, "worker": worker},
        {"supervisor": 0.0, "gateway": 0.0, "worker": cpu},
    )


def test_rss_growth_compares_medians_of_minute_two_and_the_last() -> None:
    samples = [sample(5, 900.0)]  # start-up: ignored
    samples += [sample(60 + s, 400.0 + (999.0 if s == 30 else 0.0)) for s in range(0, 60, 10)]
    samples += [sample(120 + s, 410.0) for s in range(0, 60, 10)]
    samples += [sample(180 + s, 430.0, pid=8) for s in range(0, 60, 10)]  # restarted worker
    growth = sr.rss_growth(samples, T0, minutes=4)
    assert growth["worker"]["base_mb"] == 400.0  # one sample caught mid-burst does not count
    assert growth["worker"]["end_mb"] == 430.0
    assert growth["worker"]["growth_pct"] == pytest.approx(7.5)
    assert growth["gateway"]["growth_pct"] == pytest.approx(0.0)


def test_growth_per_process_does_not_let_a_restart_hide_growth() -> None:
    samples = [
        sample(m * 60 + s, 100.0 + (20.0 if m >= 2 else 0.0)) for m in range(4) for s in (10, 40)
    ]
    samples += [sample(m * 60 + s, 90.0, pid=8) for m in range(4, 6) for s in (10, 40)]
    assert sr.rss_growth(samples, T0, minutes=6)["worker"]["growth_pct"] == pytest.approx(-10.0)
    old, new = sr.growth_per_process(samples, T0, minutes=6)
    assert (old["pid"], old["from_minute"], old["to_minute"]) == (7, 2, 4)
    assert old["growth_pct"] == pytest.approx(20.0)
    assert (new["pid"], new["from_minute"], new["to_minute"]) == (8, 6, 6)
    assert new["growth_pct"] == pytest.approx(0.0)


def test_rss_growth_of_a_two_minute_run_uses_minute_one() -> None:
    samples = [sample(s, 100.0) for s in range(0, 60, 10)]
    samples += [sample(60 + s, 101.0) for s in range(0, 60, 10)]
    growth = sr.rss_growth(samples, T0, minutes=2)["worker"]
    assert growth["base_minute"] == 1 and growth["growth_pct"] == pytest.approx(1.0)


def test_cpu_per_minute_survives_a_restart() -> None:
    samples = [sample(0, 1, cpu=100.0), sample(30, 1, cpu=115.0), sample(60, 1, pid=9, cpu=3.0)]
    samples += [sample(90, 1, pid=9, cpu=18.0)]
    cpu = sr.cpu_per_minute(samples, T0, minutes=2)
    # 15 s in 30 s, then the new pid's 3 s since it started in 30 s, then 15 s in 30 s
    assert cpu[0]["worker"] == pytest.approx(50.0)
    assert cpu[1]["worker"] == pytest.approx(30.0)


def test_split_per_minute_from_cumulative_counts() -> None:
    readings = [(T0, {}), (T0 + 30, {"1": 90}), (T0 + 70, {"1": 180, "2": 10})]
    assert sr.split_per_minute(readings, T0, minutes=2) == [{"1": 90}, {"1": 90, "2": 10}]


def test_schedule_defaults_to_the_middle_and_refuses_nonsense() -> None:
    assert sr.schedule(10, None) == {"canary": 3.0, "reload": 4.0, "kill": 5.0}
    assert sr.schedule(2, [0.5, 0.7, 1.0]) == {"canary": 0.5, "reload": 0.7, "kill": 1.0}
    for bad in ([1.0, 3.0], [5.0, 4.0, 6.0], [0.0, 1.0, 2.0], [3.0, 4.0, 10.0]):
        with pytest.raises(ValueError):
            sr.schedule(10, bad)


def test_paced_loop_keeps_its_slots_and_never_bursts_after_falling_behind() -> None:
    assert next_due(10.0, 0.1, 10.0) == pytest.approx(10.1)
    assert next_due(10.0, 0.1, 10.05) == pytest.approx(10.1)  # a little late: slot kept
    assert next_due(10.0, 0.1, 13.0) == 13.0  # 3 s behind: no 30 catch-up sends


def test_trace_round_trip_and_report_renders(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text(f"{T0 + 1:.4f},12.500,OK\n{T0 + 61:.4f},3.000,UNAVAILABLE\n")
    requests = sr.read_trace(trace)
    assert requests[1] == sr.Request(T0 + 61, 3.0, "UNAVAILABLE")
    stats = sr.per_minute(requests, T0, 2, [])
    samples = [sample(s, 100.0) for s in range(0, 120, 10)]
    result: dict[str, Any] = {
        "info": {"date": "2026-12-07 10:00 UTC", "commit": "abc1234", "cores": 2, "cpu": "x"}
        | {"onnxruntime": "1.0"},
        "minutes": 2,
        "command": "python bench/soak.py --minutes 2",
        "sample_s": 10.0,
        "workloads": [{"name": "w", "path": "grpc", "concurrency": 1, "rate": 5.0}],
        "per_minute": {"w": [asdict(s) for s in stats]},
        "rss_growth": sr.rss_growth(samples, T0, 2),
        "events": [{"event": "kill", "at_s": 65.0, "detail": "worker pid 7 SIGKILLed"}],
        "cpu": sr.cpu_per_minute(samples, T0, 2),
        "mlp_split": [{}, {"1": 5}],
        "samples": [asdict(s) for s in samples],
        "t0": T0,
    }
    text = sr.render(result)
    assert "| errors outside the restart window | 1 | 0 | **missed** |" in text
    assert "| worker RSS, minute 1 -> 2 | +0.0 % (100 -> 100 MB) | < 5 % | met |" in text
    assert "| 1:05 | kill |" in text
