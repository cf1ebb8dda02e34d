"""The bench's own arithmetic: roles by argv, per-role CPU, the layout it gives the hub and
the budgets it judges (pure functions; no server)."""

from __future__ import annotations

import tomllib
from typing import Any

from bench import report
from bench.measure import role_deltas, role_of
from bench.run import layout_toml, runnable


def test_role_of_names_inferencehub_processes_by_subcommand() -> None:
    py = "/usr/bin/python3"
    assert role_of([py, "-m", "inferencehub", "up", "--models", "m"], "hub") == "supervisor"
    assert role_of([py, "-m", "inferencehub", "gateway", "--settings", "s"], "hub") == "gateway"
    assert role_of([py, "-m", "inferencehub", "worker", "--name", "w2"], "hub") == "worker"
    assert role_of([py, "/usr/local/bin/inferencehub", "worker"], "hub") == "worker"
    assert role_of([py, "-m", "bench.naive_server", "--models", "x"], "naive") == "naive"
    assert role_of([py, "-m", "bench.floor_server"], "floor") == "floor"
    assert role_of([], "hub") == "hub"


def test_role_deltas_clamp_a_restarted_process() -> None:
    before = {"gateway": 10.0, "worker": 50.0}
    after = {"gateway": 12.5, "worker": 1.0, "supervisor": 0.1}
    assert role_deltas(before, after) == {"gateway": 2.5, "worker": 0.0, "supervisor": 0.1}


def test_layout_toml_is_valid_and_says_what_raw_ort_found() -> None:
    off = tomllib.loads(layout_toml(2, 1))
    assert off == {"instances": 2, "batching": {"enabled": False}}
    assert tomllib.loads(layout_toml(1, 16)) == {"instances": 1, "max_batch_size": 16}


def point(**more: Any) -> dict[str, Any]:
    base = {"server": "hub", "path": "grpc", "model": "mlp", "concurrency": 64}
    return {**base, "requests": 1000, "server_cpu_s": 1.0, **more}


def test_cpu_us_by_role_and_old_results() -> None:
    p = point(server_cpu_by_role={"gateway": 0.3, "worker": 0.08, "supervisor": 0.0})
    assert report.cpu_us(p, "gateway") == 300.0
    assert round(report.cpu_us(p, "worker") or 0) == 80
    assert report.cpu_us(p) == 1000.0
    assert report.cpu_us(point(), "gateway") is None  # saved before the split: "—"
    assert report.num(report.cpu_us(point(), "worker"), 0) == "—"


def test_budget_rows_use_raw_ort_cpu_and_floor() -> None:
    raw = {
        "best": {"throughput": 200.0, "layout": "2 calls x 1 thread", "batch": 1},
        "cpu_per_1k": {"2 calls x 1 thread": {"1": 9.5}},
    }
    results = {
        "raw": {"squeezenet": raw},
        "points": [
            point(server_cpu_by_role={"gateway": 0.25, "worker": 0.09}),
            point(server="floor", server_cpu_by_role={"floor": 0.39}, server_cpu_s=0.39),
            point(model="squeezenet", concurrency=16, server_cpu_by_role={"worker": 9.7}),
        ],
    }
    rows = {t.name: t for t in report.budgets(results)}
    gateway = rows["Budget: MLP c=64 gRPC, gateway CPU/req"]
    assert gateway.verdict() == "**met**"
    assert "floor at MLP c=64: 390 µs" in gateway.row()
    assert rows["Budget: MLP c=64 gRPC, worker CPU/req"].verdict().startswith("**missed** by 10")
    squeeze = rows["Budget: SqueezeNet c=16 gRPC, worker CPU/req"]
    assert squeeze.goal == 9800.0 and squeeze.verdict() == "**met**"
    assert rows["Budget: MLP c=1 gRPC, gateway CPU/req"].verdict() == "not measured"


def test_layout_lines_state_what_the_hub_served() -> None:
    lay = {"instances": 2, "threads": 1, "batching": False, "max_batch_size": None}
    text = report.layout_lines({"hub_layout": {"mode": "raw-best", "models": {"sq": lay}}})[0]
    assert "sq: 2 instances x 1 thread, batching off" in text
    assert report.layout_lines({}) == []
    tuned = {
        "instances": 2,
        "threads": 1,
        "batch_cap": 1,
        "source": "measured",
        "spent_ms": 2300.0,
    }
    auto = {"hub_layout": {"mode": "auto", "models": {}, "tuned": {"squeezenet": tuned}}}
    text = report.layout_lines(auto)[0]
    assert "squeezenet: 2 x 1 threads, batches up to 1 (measured in 2.3 s)" in text
    untuned = report.layout_lines({"hub_layout": {"mode": "untuned", "models": {}}})[0]
    assert "`--hub-layout untuned`" in untuned and 'tuning = "off"' in untuned


def test_the_burst_target_is_the_worker_rss_after_over_before() -> None:
    def burst_row(ratio: float) -> str:
        burst = {"ratio": ratio, "rss_after_mb": 579.0, "rss_before_mb": 509.0, "ok": 2}
        lines = report.targets({"points": [], "raw": {}, "burst": {"hub": burst}})
        return next(line for line in lines if "batch-64 ResNet-50 burst" in line)

    assert "(579 vs 509 MB; 2 requests)" in burst_row(1.14)
    assert burst_row(1.14).endswith("**met** |")
    assert "**missed**" in burst_row(3.4)


def test_shm_rows_compare_each_shared_memory_point_with_its_binary_baseline() -> None:
    def shm_point(path: str, rate: float | None, gateway: float, worker: float) -> dict:
        roles = {"gateway": gateway, "worker": worker, "supervisor": 0.0}
        return point(
            path=path,
            model="squeezenet",
            concurrency=4,
            throughput=rate,
            p50_ms=None if rate is None else 400 / rate,
            p99_ms=9.0,
            errors=0,
            server_cpu_by_role=roles,
            loadgen_cpu_s=0.1,
            other_cpu_s=0.0,
            wall_s=10.0,
        )

    points = [
        shm_point("grpc", 100.0, 2.0, 10.0),
        shm_point("grpc-shm", 125.0, 0.5, 9.0),
        shm_point("http", 110.0, 1.0, 10.0),
        {**shm_point("http-shm", None, 0, 0), "requests": 0, "note": "rc=1 (x): a | b"},
    ]
    assert report.shm_baseline(points, points[1]) is points[0]
    assert report.shm_baseline(points, points[0]) is None
    grpc, shm, http, failed = report.shm_rows(points)
    assert grpc[3:11] == ["100.0", "4.00", "9.00", "0", "2,000", "10,000", "100", "0.00"]
    assert grpc[11:] == http[11:] == ["", "", "", ""]  # a baseline has no ratios
    assert shm[11:] == ["1.25", "0.80", "0.25", "0.90"]
    assert failed[3] == "failed: rc=1 (x): a / b" and len(failed) == len(shm)
    assert "| 1.25 | 0.80 | 0.25 | 0.90 |" in "\n".join(report.shm_section({"points": points}))


def test_the_shm_extra_runs_with_either_cnn_the_others_need_all_their_models() -> None:
    assert runnable("shm", {"squeezenet"}) and runnable("shm", {"mlp", "resnet50"})
    assert not runnable("shm", {"mlp"})
    assert runnable("door", {"mlp", "resnet50"}) and not runnable("door", {"resnet50"})
