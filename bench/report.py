"""Turn one invocation's measurements into the markdown report: tables, ratios and targets.

Targets come from the performance issue; the report states met/missed and by how much next
to the figures, never a pass/fail exit code: on a shared 2-core box the verdict is for a
human reading the noise columns too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PATHS = {
    ("naive", "http"): "naive HTTP (binary)",
    ("naive", "http-json"): "naive HTTP JSON",
    ("naive", "grpc"): "naive gRPC",
    ("hub", "http-json"): "InferenceHub HTTP JSON",
    ("hub", "http"): "InferenceHub HTTP binary",
    ("hub", "grpc"): "InferenceHub gRPC",
    ("floor", "grpc"): "floor: do-nothing grpc.aio server",
}


def num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def times(r: float | None) -> str:
    """A ratio with two decimals, or two significant digits when tiny (MLP vs raw ORT)."""
    if r is None:
        return "—"
    return f"{r:.2f}" if r >= 0.1 else f"{r:.2g}"


def at(by_batch: dict[Any, float], batch: int) -> float | None:
    """by_batch[batch]; JSON turns the int keys into strings."""
    return by_batch.get(batch, by_batch.get(str(batch)))


def find(points: list[dict[str, Any]], server: str, path: str, model: str, c: int) -> dict | None:
    for p in points:
        if (p["server"], p["path"], p["model"], p["concurrency"]) == (server, path, model, c):
            return p
    return None


def naive_peer(points: list[dict[str, Any]], p: dict[str, Any]) -> dict | None:
    """The naive point to compare with: same protocol; JSON falls back to naive binary HTTP."""
    peer = find(points, "naive", p["path"], p["model"], p["concurrency"])
    if peer is None and p["path"] == "http-json":
        peer = find(points, "naive", "http", p["model"], p["concurrency"])
    return peer


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def per_1k(p: dict[str, Any], key: str) -> float | None:
    return p[key] / p["requests"] * 1000 if p.get("requests") else None


def cpu_us(p: dict[str, Any] | None, role: str | None = None) -> float | None:
    """CPU µs per request served: one role's processes, or (role None) the whole server.
    None where not measured, including results saved before the split by role existed."""
    if not p or not p.get("requests"):
        return None
    if role is None:
        return float(p["server_cpu_s"]) / p["requests"] * 1e6
    seconds = p.get("server_cpu_by_role", {}).get(role)
    return seconds / p["requests"] * 1e6 if seconds is not None else None


def raw_cpu_us(raw: dict[str, Any] | None) -> float | None:
    """Raw ORT's CPU µs per inference at its best layout and batch (cpu_per_1k is s per 1k)."""
    if not raw:
        return None
    best = raw["best"]
    per_1k = at(raw["cpu_per_1k"].get(best["layout"], {}), best["batch"])
    return per_1k * 1000 if per_1k is not None else None


def model_section(model: str, results: dict[str, Any]) -> list[str]:
    raw = results["raw"].get(model)
    points = [p for p in results["points"] if p["model"] == model]
    conc = sorted({p["concurrency"] for p in points})
    lines = [f"### {model}", ""]
    best = raw["best"]["throughput"] if raw else None
    if raw:
        layout, batch = raw["best"]["layout"], raw["best"]["batch"]
        lat = "; ".join(
            f"{name}: p50 {num(v['p50_ms'], 3)} / p99 {num(v['p99_ms'], 3)} ms"
            for name, v in raw["latency"].items()
        )
        lines += [
            f"Raw ONNX Runtime in-process: best **{num(best)} inferences/s** "
            f"({layout}, batch {batch}; {num(at(raw['cpu_per_1k'][layout], batch), 3)} CPU s per "
            f"1k inferences there); batch-1 latency {lat}. Other processes used "
            f"{num(max(raw.get('other_load', []), default=None), 2)} cores at most meanwhile.",
            "",
            "| raw ORT layout | " + " | ".join(f"batch {b}" for b in raw["batches"]) + " |",
            "|---|" + "---:|" * len(raw["batches"]),
        ]
        for name, rates in raw["throughput"].items():
            cells = " | ".join(num(at(rates, b)) for b in raw["batches"])
            lines.append(f"| {name} (inferences/s) | {cells} |")
        lines.append("")
    header = "| throughput, inferences/s | " + " | ".join(f"c={c}" for c in conc) + " |"
    lines += [header, "|---|" + "---:|" * len(conc)]
    if best:
        lines.append(
            "| raw ORT best (in-process ceiling) | " + " | ".join(num(best) for _ in conc) + " |"
        )
    for (server, path), label in PATHS.items():
        row = [find(points, server, path, model, c) for c in conc]
        if any(row):
            cells = [
                num(p["throughput"]) + ("*" if p and p["tool"] == "builtin" else "") if p else "—"
                for p in row
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| c | path | inferences/s | p50 ms | p99 ms | errors | server CPU s/1k req "
        "| gateway µs/req | worker µs/req "
        "| loadgen CPU s/1k req | other load, cores | x raw best | x naive |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in conc:
        for (server, path), label in PATHS.items():
            p = find(points, server, path, model, c)
            if p is None:
                continue
            peer = naive_peer(points, p) if server == "hub" else None
            vs_naive = ratio(p["throughput"], peer["throughput"] if peer else None)
            other = p["other_cpu_s"] / p["wall_s"] if p.get("wall_s") else None
            tool = " (built-in)" if p["tool"] == "builtin" else ""
            lines.append(
                f"| {c} | {label}{tool} | {num(p['throughput'])} | {num(p['p50_ms'], 2)} "
                f"| {num(p['p99_ms'], 2)} | {p['errors']} | {num(per_1k(p, 'server_cpu_s'), 3)} "
                f"| {num(cpu_us(p, 'gateway'), 0)} | {num(cpu_us(p, 'worker'), 0)} "
                f"| {num(per_1k(p, 'loadgen_cpu_s'), 3)} | {num(other, 2)} "
                f"| {times(ratio(p['throughput'], best) if server != 'floor' else None)} "
                f"| {times(vs_naive)} |"
            )
    lines.append("")
    return lines


@dataclass
class Target:
    """One goal from the issue: `value` against `goal` (a ratio, or a quantity in `unit`)."""

    name: str
    value: float | None
    goal: float | None  # None: the goal depends on a baseline that was not measured
    higher_is_better: bool
    unit: str = "x"  # "x" = a ratio
    detail: str = ""
    unmeasured: str = "not measured"  # the verdict when there is no value
    goal_note: str = ""  # how a derived goal was made, e.g. "(naive 0.70 + 0.3)"
    digits: int = 2

    def row(self) -> str:
        sign = "≥" if self.higher_is_better else "≤"
        space = "" if self.unit == "x" else " "
        value = "—" if self.value is None else f"{num(self.value, self.digits)}{space}{self.unit}"
        measured = f"{value} {self.detail}".strip()
        goal = f"{sign} {num(self.goal, self.digits)}{space}{self.unit} {self.goal_note}".strip()
        if self.goal is None:  # a derived goal whose baseline is missing: say how it is made
            goal = f"{sign} {self.goal_note.strip('()')}" if self.goal_note else "—"
        return f"| {self.name} | {measured} | {goal} | {self.verdict()} |"

    def verdict(self) -> str:
        if self.value is None or self.goal is None:
            return self.unmeasured
        if self.value >= self.goal if self.higher_is_better else self.value <= self.goal:
            return "**met**"
        gap = abs(self.value - self.goal)
        unit = "" if self.unit == "x" else f" {self.unit}"
        rel = f" ({gap / self.goal:.0%})" if self.goal else ""
        return f"**missed** by {num(gap, self.digits)}{unit}{rel}"


def targets(results: dict[str, Any]) -> list[str]:
    pts, raw = results["points"], results["raw"]

    def get(server: str, path: str, model: str, c: int, key: str) -> float | None:
        p = find(pts, server, path, model, c)
        return p[key] if p else None

    def raw_best(model: str) -> float | None:
        return raw[model]["best"]["throughput"] if model in raw else None

    rows: list[Target] = []
    for path, label in (("grpc", "gRPC"), ("http", "HTTP binary")):
        resnet = get("hub", path, "resnet50", 16, "throughput")
        squeeze = get("hub", path, "squeezenet", 16, "throughput")
        naive = get("naive", path, "squeezenet", 16, "throughput")
        rows += [
            Target(
                f"ResNet-50 c=16 {label} / raw ORT best",
                ratio(resnet, raw_best("resnet50")),
                0.95,
                True,
            ),
            Target(
                f"SqueezeNet c=16 {label} / raw ORT best",
                ratio(squeeze, raw_best("squeezenet")),
                0.90,
                True,
            ),
            Target(f"SqueezeNet c=16 {label} / naive {label}", ratio(squeeze, naive), 1.1, True),
        ]
    mlp = get("hub", "grpc", "mlp", 64, "throughput")
    naive_p50 = get("naive", "grpc", "mlp", 1, "p50_ms")
    rows += [
        Target(
            "MLP c=1 gRPC p50",
            get("hub", "grpc", "mlp", 1, "p50_ms"),
            naive_p50 + 0.3 if naive_p50 is not None else None,
            False,
            "ms",
            goal_note=f"(naive {num(naive_p50, 2)} + 0.3)" if naive_p50 else "(naive p50 + 0.3 ms)",
        ),
        Target("MLP c=64 gRPC throughput (stretch)", mlp, 3000, True, "/s"),
        Target("MLP c=64 gRPC p99", get("hub", "grpc", "mlp", 64, "p99_ms"), 50, False, "ms"),
        Target(
            "MLP c=64 gRPC / naive gRPC",
            ratio(mlp, get("naive", "grpc", "mlp", 64, "throughput")),
            1.0,
            True,
        ),
    ]
    over = results.get("overload", {}).get("hub", {})
    if "failed" not in over.get("overload", {"failed": 1}):
        o, base = over["overload"], over["baseline"]
        late = o["deadline_exceeded"] + o["late_ok"]
        rejected = f"({o['rejected']} rejected)"
        rows += [
            Target("Overload c=256: answered after the 2 s deadline", late, 0, False, "requests"),
            Target(
                "Overload c=256: rejections answered, p99",
                o["rejected_p99_ms"],
                50,
                False,
                "ms",
                rejected,
                "**missed**: nothing was rejected" if late else "n/a: nothing needed rejecting",
            ),
            Target(
                "Overload c=256: admitted p99 / c=16 p99",
                ratio(o["p99_ms"], base.get("p99_ms")),
                2.0,
                False,
                detail=f"({num(o['p99_ms'])} vs {num(base.get('p99_ms'))} ms)",
                unmeasured="**missed**: nothing admitted in time" if late else "not measured",
            ),
        ]
    door = results.get("door", {}).get("hub")
    if door:
        rows += [
            Target(
                "Door: /v2/health/ready p99 under ResNet-50 c=8",
                door["ready"].get("p99_ms"),
                10,
                False,
                "ms",
            ),
            Target(
                "Door: MLP gRPC c=1 p99 under ResNet-50 c=8",
                door["mlp"].get("p99_ms"),
                100,
                False,
                "ms",
            ),
        ]
    burst = results.get("burst", {}).get("hub")
    if burst and burst.get("ratio") is not None:
        rows.append(
            Target(
                "Worker RSS 10 s after a batch-64 ResNet-50 burst / before",
                burst["ratio"],
                1.3,
                False,
                detail=f"({num(burst['rss_after_mb'], 0)} vs {num(burst['rss_before_mb'], 0)} MB"
                f"; {burst['ok']} requests)",
            )
        )
    mem = results.get("memory", {}).get("hub_idle")
    if mem:
        rows.append(Target("Idle RSS, all InferenceHub processes", mem["rss_mb"], 300, False, "MB"))
    start = results.get("startup", {}).get("median_s")
    if start is not None:
        rows.append(Target("`up` to ready, median", start, 3.0, False, "s"))
    return [
        "| target | measured | goal | verdict |",
        "|---|---:|---:|---|",
        *(t.row() for t in [*budgets(results), *rows]),
        "",
    ]


def budgets(results: dict[str, Any]) -> list[Target]:
    """The issue's CPU budgets: a process's CPU time (/proc) over the requests served, per
    role. Gateway rows carry the floor server's figure: the least grpc.aio spends per call."""
    pts = results["points"]

    def point(model: str, c: int) -> dict[str, Any] | None:
        return find(pts, "hub", "grpc", model, c)

    def floor(c: int) -> str:
        us = cpu_us(find(pts, "floor", "grpc", "mlp", c))
        return f"(floor at MLP c={c}: {num(us, 0)} µs)" if us is not None else ""

    raw_us = raw_cpu_us(results["raw"].get("squeezenet"))
    rows = []
    for model, label, c, gateway, worker, floor_c in (
        ("mlp", "MLP", 64, 300.0, 80.0, 64),
        ("mlp", "MLP", 1, 400.0, 250.0, 1),
        ("squeezenet", "SqueezeNet", 16, 400.0, None, 64),
    ):
        p = point(model, c)
        rows.append(
            Target(
                f"Budget: {label} c={c} gRPC, gateway CPU/req",
                cpu_us(p, "gateway"),
                gateway,
                False,
                "µs",
                floor(floor_c),
                digits=0,
            )
        )
        note = ""
        if worker is None:  # SqueezeNet: raw ORT's own CPU per inference + 300 µs
            worker = raw_us + 300 if raw_us is not None else None
            note = f"(raw ORT best {num(raw_us, 0)} + 300)" if raw_us else "(raw ORT best + 300 µs)"
        rows.append(
            Target(
                f"Budget: {label} c={c} gRPC, worker CPU/req",
                cpu_us(p, "worker"),
                worker,
                False,
                "µs",
                goal_note=note,
                digits=0,
            )
        )
    return rows


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table; the first column left-aligned, the others right-aligned."""
    rule = "|---|" + "---:|" * (len(header) - 1)
    return ["| " + " | ".join(header) + " |", rule, *("| " + " | ".join(r) + " |" for r in rows)]


def overload_rows(over: dict[str, Any]) -> list[list[str]]:
    rows = []
    for server, runs in over.items():
        for key in ("baseline", "overload"):
            o = runs.get(key, {"failed": "not run"})
            if "failed" in o:
                rows.append([server, key, f"failed: {o['failed']}", *[""] * 8])
                continue
            others = sum(o["error_kinds"].values()) - o["rejected"]
            rows.append(
                [
                    server,
                    str(o["concurrency"]),
                    num(o["throughput"]),
                    num(o["p50_ms"]),
                    num(o["p99_ms"]),
                    f"{o['rejected']} ({num(o['rejected_p50_ms'])} / {num(o['rejected_p99_ms'])})",
                    str(o["deadline_exceeded"] + o["late_ok"]),
                    str(others),
                    str(o.get("server_ok", "—")),
                    str(o.get("wasted", "—")),
                    num(o.get("drain_s")),
                ]
            )
    return rows


SHM_LABELS = {
    "grpc": "gRPC binary (raw_input_contents)",
    "grpc-shm": "gRPC + system shm",
    "http": "HTTP binary",
    "http-shm": "HTTP + system shm",
}


def shm_baseline(points: list[dict[str, Any]], p: dict[str, Any]) -> dict[str, Any] | None:
    """The binary point a shared-memory point is compared with: same model, concurrency and
    protocol; None for a binary point itself."""
    if not p["path"].endswith("-shm"):
        return None
    return find(points, p["server"], p["path"].removesuffix("-shm"), p["model"], p["concurrency"])


def shm_rows(points: list[dict[str, Any]]) -> list[list[str]]:
    """One row per point of the shm extra; shared-memory rows end with shm / binary ratios
    (throughput, p50, gateway and worker CPU per request; below 1 = shm costs less)."""
    rows = []
    for p in points:
        base = shm_baseline(points, p)
        label = SHM_LABELS.get(p["path"], p["path"])
        if p["throughput"] is None:
            why = (p.get("note") or "not measured").replace("|", "/")  # a table cell
            rows.append([p["model"], str(p["concurrency"]), label, f"failed: {why}", *[""] * 11])
            continue
        other = p["other_cpu_s"] / p["wall_s"] if p.get("wall_s") else None
        cells = [
            p["model"],
            str(p["concurrency"]),
            label,
            num(p["throughput"]),
            num(p["p50_ms"], 2),
            num(p["p99_ms"], 2),
            str(p["errors"]),
            num(cpu_us(p, "gateway"), 0),
            num(cpu_us(p, "worker"), 0),
            num(p["loadgen_cpu_s"] / p["requests"] * 1e6 if p.get("requests") else None, 0),
            num(other, 2),
        ]
        ok = base is not None and base.get("throughput") is not None
        pairs = [
            (p["throughput"], base["throughput"] if ok else None),
            (p["p50_ms"], base["p50_ms"] if ok else None),
            (cpu_us(p, "gateway"), cpu_us(base, "gateway") if ok else None),
            (cpu_us(p, "worker"), cpu_us(base, "worker") if ok else None),
        ]
        rows.append([*cells, *(times(ratio(a, b)) if base else "" for a, b in pairs)])
    return rows


def shm_section(shm: dict[str, Any]) -> list[str]:
    header = ["model", "c", "path", "inferences/s", "p50 ms", "p99 ms", "errors"]
    header += ["gateway µs/req", "worker µs/req", "perf_analyzer µs/req", "other load, cores"]
    header += ["shm/binary /s", "shm/binary p50", "shm/binary gateway", "shm/binary worker"]
    return [
        "## System shared memory vs binary tensors (InferenceHub, perf_analyzer)",
        "",
        "Each shared-memory point runs right after its binary baseline on the same protocol "
        "(`--shared-memory system --output-shared-memory-size "
        f"{shm.get('output_region_bytes', '?')}`: perf_analyzer puts the input and the output "
        "in POSIX shm objects it registered, the request names the regions; the gateway never "
        "touches the bytes, the worker preads the input and pwrites the answer). Same hub, "
        "same run. *shm/binary*: the shared-memory figure over its baseline's (below 1 = less); "
        "*perf_analyzer µs/req*: the load generator's own CPU, on the same 2 cores.",
        "",
        *table(header, shm_rows(shm["points"])),
        "",
    ]


def extras(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if shm := results.get("shm"):
        lines += shm_section(shm)
    if over := results.get("overload"):
        lines += ["## Overload: SqueezeNet, gRPC, 2 s client deadline (built-in generator)", ""]
        header = ["server", "c", "admitted/s", "p50 ms", "p99 ms", "rejected (p50 / p99 ms)"]
        header += ["after deadline", "other errors", "server finished", "wasted", "drain s"]
        lines += [*table(header, overload_rows(over)), ""]
        lines += [
            "*wasted*: requests the server finished although the client had already given up "
            "(server finished minus client OK, warm-up included); *drain*: seconds the server "
            "kept computing after the load generator stopped.",
            "",
        ]
    if door := results.get("door"):
        lines += ["## Door under load: while ResNet-50 gRPC c=8 saturates the server", ""]
        header = ["server", "ready p50 ms", "ready p99 ms", "ready errors", "MLP c=1 /s"]
        header += ["MLP p50 ms", "MLP p99 ms", "MLP errors", "ResNet-50 /s meanwhile"]
        rows = []
        for server, d in door.items():
            r, m = d["ready"], d["mlp"]
            rows.append(
                [
                    server,
                    num(r.get("p50_ms"), 2),
                    num(r.get("p99_ms"), 2),
                    str(r.get("errors")),
                    num(m.get("throughput")),
                    num(m.get("p50_ms"), 2),
                    num(m.get("p99_ms"), 2),
                    str(m.get("errors", m.get("failed"))),
                    num(d.get("background_rate")),
                ]
            )
        lines += [*table(header, rows), ""]
    mem, start = results.get("memory", {}), results.get("startup", {})
    lines += ["## Memory and start-up", ""]
    names = {
        "hub_idle": "InferenceHub idle, after loading",
        "hub_after": "InferenceHub after the run",
        "naive_idle": "naive server idle",
    }
    rows = [
        [
            label,
            num(mem[k]["rss_mb"]),
            num(mem[k]["pss_mb"]),
            ", ".join(f"{role} {num(v)}" for role, v in mem[k]["per_process"].items()),
        ]
        for k, label in names.items()
        if k in mem
    ]
    lines += table(["measurement", "RSS MB (sum)", "PSS MB (sum)", "RSS by process"], rows)
    if start:
        samples = ", ".join(f"{s:.2f}" for s in start["samples_s"])
        lines += [
            "",
            "`python -m inferencehub up` (from source) to `/v2/health/ready` = 200: median "
            f"**{start['median_s']:.2f} s** (samples {samples} s).",
        ]
    return [*lines, ""]


def layout_lines(results: dict[str, Any]) -> list[str]:
    """Which layout InferenceHub served the CNNs with (--hub-layout); nothing for old runs."""
    hub = results.get("hub_layout")
    if not hub:
        return []
    if hub["mode"] == "auto":
        parts = [
            f"{name}: {t['instances']} x {t['threads']} threads, "
            + (f"batches up to {t['batch_cap']}" if t["batch_cap"] else "batches up to 64")
            + f" ({t['source']}"
            + (f" in {t['spent_ms'] / 1e3:.1f} s" if t["source"] == "measured" else "")
            + ")"
            for name, t in hub.get("tuned", {}).items()
        ]
        text = (
            "InferenceHub chose its own layouts (`--hub-layout auto`: no model.toml for the "
            "bench models, tuning on; `cached` = measured at an earlier start with the same "
            f"file, CPU and cores): {'; '.join(parts) or 'not read'}. The naive server keeps "
            "ONNX Runtime's defaults."
        )
        return [text, ""]
    if hub["mode"] != "raw-best" or not hub["models"]:
        why = f"`--hub-layout {hub['mode']}`" if hub["mode"] != "raw-best" else "no CNN measured"
        text = (
            f"InferenceHub served every model with its defaults ({why}; model.toml tuning = "
            '"off" for the bench models: 1 instance with all cores\' threads, batching on).'
        )
        return [text, ""]
    parts = []
    for name, lay in hub["models"].items():
        threads = "thread" if lay["threads"] == 1 else "threads"
        instances = "instance" if lay["instances"] == 1 else "instances"
        batching = f"batching up to {lay['max_batch_size']}" if lay["batching"] else "batching off"
        parts.append(
            f"{name}: {lay['instances']} {instances} x {lay['threads']} {threads}, {batching}"
        )
    text = (
        f"InferenceHub's layout (`--hub-layout raw-best`, written to model.toml before it "
        f"started): {'; '.join(parts)} (raw ORT's best in this run). The naive server keeps "
        "ONNX Runtime's defaults."
    )
    return [text, ""]


def render(results: dict[str, Any], command: str) -> str:
    info, s = results["info"], results["settings"]
    lines = [
        f"# InferenceHub serving benchmark — {info['date']}",
        "",
        f"`{command}` — {results['duration_s'] / 60:.1f} min. "
        f"Commit `{info['commit']}`{info['dirty']}; "
        f"{info['cores']} cores ({info['cpu']}), {info['memory_gb']:.0f} GB, {info['os']}, Python "
        f"{info['python']}, onnxruntime {info['onnxruntime']}, onnx {info['onnx']}.",
        "",
        f"Load: {s['loadgen']}; {s['trials']} windows of {s['window_ms']} ms per point (longer "
        "where c requests take longer than that at the raw ORT ceiling: ~4 rounds, at most 15 s, "
        f"as a batching server answers in bursts); concurrency "
        f"{', '.join(map(str, s['concurrency']))}; batch 1, U[0,1) inputs. Each server serves the "
        "same repository (mlp, squeezenet, resnet50, plus models/efficientnet) and both run during "
        "the whole benchmark (the floor too where the MLP is measured), interleaved point by "
        "point. CPU s/1k req counts every process of the server (InferenceHub: supervisor + "
        "gateway + worker) from /proc; *gateway* / *worker µs/req* split InferenceHub's by "
        "process (told apart by argv; the supervisor's share is only in the total; the naive and "
        "floor servers are one process: see the total); *loadgen* is the load generator's own "
        "CPU (perf_analyzer costs ~0.1 s/1k req and shares these cores); *other load* is what the "
        "rest of the machine (other users included) used meanwhile, in cores. `*` / (built-in): "
        "the point was measured with the built-in generator. *x naive*: "
        "against the naive server on the same protocol (HTTP JSON against its binary HTTP).",
        "",
        *layout_lines(results),
        "## Targets",
        "",
        "Budgets: CPU per request = a process's CPU time from /proc divided by the requests the "
        "server counted. *Floor*: `bench/floor_server.py`, a grpc.aio KServe server that "
        "computes nothing (fixed zero answer, uvloop): the least any grpc.aio server spends per "
        "unary call on this machine, shown next to the gateway budgets.",
        "",
        *targets(results),
        "## Per model",
        "",
    ]
    for model in results["settings"]["models"]:
        lines += model_section(model, results)
    lines += extras(results)
    notes = [p for p in results["points"] if p.get("note")]
    if notes or results.get("anomalies"):
        lines += ["## Notes and anomalies", ""]
        lines += [f"- {a}" for a in results.get("anomalies", [])]
        lines += [
            f"- {PATHS[(p['server'], p['path'])]} {p['model']} c={p['concurrency']}: {p['note']}"
            for p in notes
        ]
        lines.append("")
    return "\n".join(lines)
