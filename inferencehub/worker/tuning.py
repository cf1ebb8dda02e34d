"""The execution layout a CPU model version runs with, measured on this machine.

No single layout fits every model: a microsecond MLP runs fastest as one session with every
core (two Python threads calling it fight over the GIL), a CNN as one single-threaded session
per core (intra-op threads synchronise at every layer), and batching pays for the first and
costs the second. So when a version loads (model.toml `tuning = "auto"`), the worker times the
candidate layouts (instances x intra-op threads over the cores it may use) on synthetic input
within a budget, then, on the fastest, the batch sizes worth merging requests into. The result
is cached (layout.py) by the model file's sha256, the CPU model, the usable core count and the
onnxruntime version: the next start reads it back. What model.toml or the worker's settings fix
explicitly is not measured.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from inferencehub.errors import first_line
from inferencehub.protocol.datatypes import NUMPY_BY_DATATYPE
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.memory import release_free_memory, rss_mb
from inferencehub.worker.signature import batchable, tensor_specs

logger = logging.getLogger(__name__)

DEFAULT_BUDGET_S = 3.0
# More sessions cost memory (a copy of the weights each): beyond 8 the gain is rarely there.
MAX_TUNED_INSTANCES = 8
# Share of the budget the first sessions run untimed, warming the process up.
WARM_SHARE = 0.1
# Layouts are timed twice (interleaved) when all their sessions fit in this much memory.
TWICE_MAX_MB = 512
# Batches beyond this are not measured (a model.toml may accept far larger ones).
MAX_TUNED_BATCH = 256
# Doubling the merged batch must buy this much more throughput, else it only adds latency.
BATCH_GAIN = 1.10
# Each trial runs at least this long (and ~TRIAL_RUNS runs), at most MAX_TRIAL_S.
MIN_TRIAL_S = 0.02
MAX_TRIAL_S = 0.5
TRIAL_RUNS = 100


class Session(Protocol):
    def run(self, output_names: Sequence[str] | None, feeds: dict[str, np.ndarray]) -> Any: ...

    def get_inputs(self) -> list[Any]: ...

    def get_outputs(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class Constraints:
    """What tuning may choose: `instances` / `threads` fixed when given; batches up to
    `max_batch` (0: the model has no batch dimension) when `tune_batch`."""

    cores: int
    instances: int | None = None
    threads: int | None = None
    max_batch: int = 0
    tune_batch: bool = True


@dataclass(frozen=True, slots=True)
class Trial:
    instances: int
    threads: int
    batch: int
    items_per_s: float


@dataclass(frozen=True, slots=True)
class Layout:
    """What a version runs with. `batch_cap`: the largest batch merged from queued requests
    (0: as many as max_batch_size allows, the untuned default)."""

    instances: int
    threads: int
    batch_cap: int = 0
    source: str = "off"  # measured | cached | off
    reason: str = ""
    trials: tuple[Trial, ...] = field(default=())
    spent_s: float = 0.0
    session_mb: float = 0.0  # RSS one session added when tuning opened it

    def to_proto(self) -> pb.Tuning:
        return pb.Tuning(
            source=self.source,
            reason=self.reason,
            intra_op_threads=self.threads,
            batch_cap=self.batch_cap,
            spent_ms=self.spent_s * 1e3,
            session_mb=self.session_mb,
            trials=[
                pb.TuningTrial(
                    instances=t.instances,
                    intra_op_threads=t.threads,
                    batch=t.batch,
                    items_per_s=t.items_per_s,
                )
                for t in self.trials
            ],
        )


def default_layout(constraints: Constraints, reason: str) -> Layout:
    """The untuned layout: model.toml's instances (1), the cores shared among them."""
    instances = constraints.instances or 1
    threads = constraints.threads or max(1, constraints.cores // instances)
    return Layout(instances, threads, reason=reason)


def candidate_layouts(constraints: Constraints) -> list[Layout]:
    """Fewest instances first: 1, 2, 4, ... up to the cores (and the core count itself)."""
    cores = constraints.cores
    if constraints.instances is not None:
        counts = [constraints.instances]
    else:
        counts = [n for n in (1, 2, 4, 8) if n <= min(cores, MAX_TUNED_INSTANCES)]
        if cores <= MAX_TUNED_INSTANCES and cores not in counts:
            counts.append(cores)
    return [Layout(n, constraints.threads or max(1, cores // n)) for n in counts]


def candidate_batches(constraints: Constraints) -> list[int]:
    if not constraints.tune_batch or constraints.max_batch < 2:
        return []
    sizes, size = [], 1
    while size <= min(constraints.max_batch, MAX_TUNED_BATCH):
        sizes.append(size)
        size *= 2
    return sizes


def pick_layout(trials: Sequence[Trial]) -> Trial:
    """The fastest. No preference for fewer sessions when it is close: in serving, more
    instances also hide the worker's own work between runs, which these trials do not see."""
    return max(trials, key=lambda t: t.items_per_s)


def pick_batch_cap(trials: Sequence[Trial]) -> int:
    """The largest batch reached by steps that each bought BATCH_GAIN more throughput than the
    batch chosen before them (trials are ordered by batch, the first is batch 1)."""
    cap, rate = trials[0].batch, trials[0].items_per_s
    for trial in trials[1:]:
        if trial.items_per_s >= rate * BATCH_GAIN:
            cap, rate = trial.batch, trial.items_per_s
    return cap


def tuning_feeds(inputs: Sequence[pb.TensorSpec], batch: int) -> dict[str, np.ndarray] | None:
    """Synthetic input: U[0,1) floats (zeros drive constant-weight CNNs into slow denormals),
    zeros otherwise; the batch dimension `batch`, other dynamic ones 1. None when an input
    takes strings."""
    if any(s.datatype not in NUMPY_BY_DATATYPE for s in inputs):
        return None
    rng = np.random.default_rng(0)
    feeds = {}
    for s in inputs:
        shape = [d if d >= 0 else 1 for d in s.shape]
        if shape and s.shape[0] < 0:
            shape[0] = batch
        dtype = NUMPY_BY_DATATYPE[s.datatype]
        if np.issubdtype(dtype, np.floating):
            feeds[s.name] = rng.random(shape, dtype=np.float32).astype(dtype)
        else:
            feeds[s.name] = np.zeros(shape, dtype)
    return feeds


def time_trial(
    sessions: Sequence[Session],
    feeds: dict[str, np.ndarray],
    batch: int,
    budget_s: float,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Items per second with every session running `feeds` over and over on its own thread
    (as the worker's instances do): after one untimed run each, until `budget_s` has passed
    or, once MIN_TRIAL_S has, TRIAL_RUNS runs are done. Raises what a run raises."""
    count = len(sessions)
    warm = threading.Barrier(count + 1)
    runs = [0] * count
    ended = [0.0] * count
    errors: list[BaseException] = []
    start = end = 0.0

    def run(index: int) -> None:
        session = sessions[index]
        try:
            session.run(None, feeds)
        except BaseException as exc:
            errors.append(exc)
        warm.wait()
        warm.wait()  # the clock starts
        while not errors:
            now = clock()
            if now >= end or (now - start >= MIN_TRIAL_S and sum(runs) >= TRIAL_RUNS):
                break
            try:
                session.run(None, feeds)
            except BaseException as exc:
                errors.append(exc)
                break
            runs[index] += 1
            ended[index] = clock()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    warm.wait()
    start = clock()
    end = start + budget_s
    warm.wait()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    elapsed = max(ended) - start
    return sum(runs) * batch / elapsed if elapsed > 0 else 0.0


def _inputs(session: Session) -> tuple[list[pb.TensorSpec], bool]:
    """The session's input specs, and whether every input and output has a batch dimension."""
    inputs = tensor_specs(session.get_inputs())
    return inputs, batchable(inputs, tensor_specs(session.get_outputs()))


def tune(
    open_session: Callable[[int], Session],
    constraints: Constraints,
    budget_s: float = DEFAULT_BUDGET_S,
    clock: Callable[[], float] = time.perf_counter,
) -> Layout:
    """Measure the candidate layouts, then the batch sizes on the fastest; the budget covers
    opening sessions too. `open_session(threads)` opens one CPU session. A model that cannot
    run on synthetic input keeps the default layout."""
    began = clock()
    layouts = candidate_layouts(constraints)
    before_mb = rss_mb()
    try:
        opened = [open_session(layouts[0].threads) for _ in range(layouts[0].instances)]
    except Exception as exc:  # the load itself reports it
        return default_layout(constraints, f"not tuned: {first_line(exc)}")
    release_free_memory()  # what building the session left behind is not what it keeps
    session_mb = max(0.0, rss_mb() - before_mb) / len(opened)
    inputs, batchable = _inputs(opened[0])
    batches = candidate_batches(constraints) if batchable else []
    if len(layouts) == 1 and not batches:
        return default_layout(constraints, "nothing to tune: instances and batching are fixed")
    feeds = tuning_feeds(inputs, 1)
    if feeds is None:
        return default_layout(constraints, "not tuned: an input takes strings")

    def left() -> float:
        return budget_s - (clock() - began)

    try:
        # A process's first runs are slow for a while (SqueezeNet 2 x 1: 192/s in its first
        # 0.25 s, 232/s two seconds on): untimed, so the first layout is not judged on them.
        time_trial(opened, feeds, 1, budget_s * WARM_SHARE, clock)
    except Exception as exc:  # ONNX Runtime raises many types; zeros need not be valid input
        return default_layout(
            constraints, f"not tuned: the model failed on synthetic input: {first_line(exc)}"
        )
    # Interference only ever slows a trial down, so with room for every layout's sessions at
    # once each is timed twice, in A B .. B A order, and keeps its better time: one busy
    # moment on a shared box then cannot decide the layout (and stay in the cache).
    twice = len(layouts) > 1 and session_mb * sum(x.instances for x in layouts) <= TWICE_MAX_MB
    order = [*range(len(layouts)), *reversed(range(len(layouts)))] if twice else []
    order = order or list(range(len(layouts)))
    rates: dict[int, float] = {}
    pool: dict[int, list[Session]] = {0: opened}  # sessions of the layouts still in the race
    try:
        for done, index in enumerate(order):
            if rates and left() <= 0:
                break
            layout = layouts[index]
            if index not in pool:
                pool[index] = [open_session(layout.threads) for _ in range(layout.instances)]
            share = left() / (len(order) - done + max(1, len(batches) // 2))
            rate = time_trial(
                pool[index], feeds, 1, min(MAX_TRIAL_S, max(MIN_TRIAL_S, share)), clock
            )
            rates[index] = max(rate, rates.get(index, 0.0))
            if not twice:  # keep only the fastest layout's sessions open
                fastest = max(rates, key=lambda i: rates[i])
                pool = {i: v for i, v in pool.items() if i == fastest}
        trials = [
            Trial(layouts[i].instances, layouts[i].threads, 1, rates[i]) for i in sorted(rates)
        ]
        best = pick_layout(trials)
        chosen = next(i for i in rates if layouts[i].instances == best.instances)
        sessions = pool.get(chosen) or [open_session(best.threads) for _ in range(best.instances)]
        pool = {}
        batch_trials = [best]
        for size in batches[1:]:
            per_item_s = 1 / max(batch_trials[-1].items_per_s, 1e-9) * best.instances
            if left() < 2 * per_item_s * size:  # one more run of this size would not fit
                break
            batch_feeds = tuning_feeds(inputs, size)
            assert batch_feeds is not None
            share = left() / max(1, len(batches) - len(batch_trials))
            rate = time_trial(
                sessions, batch_feeds, size, min(MAX_TRIAL_S, max(MIN_TRIAL_S, share)), clock
            )
            batch_trials.append(Trial(best.instances, best.threads, size, rate))
            # Two doublings without gain: larger batches will not pay either.
            if len(batch_trials) >= 3 and pick_batch_cap(batch_trials) < batch_trials[-2].batch:
                break
    except Exception as exc:  # ONNX Runtime raises many types; zeros need not be valid input
        return default_layout(
            constraints, f"not tuned: the model failed on synthetic input: {first_line(exc)}"
        )

    # No larger batch measured within the budget: keep the untuned default (no cap).
    cap = pick_batch_cap(batch_trials) if len(batch_trials) > 1 else 0
    first = trials[0]
    reason = (
        f"{best.instances} x {best.threads} threads: {best.items_per_s:,.0f}/s at batch 1"
        + (
            f", {best.items_per_s / first.items_per_s:.2f}x {first.instances} x {first.threads}"
            if best is not first
            else ""
        )
        + (f"; merges batches up to {cap}" if cap else "")
        + ("; no time left to measure batches" if batches and not cap else "")
    )
    return Layout(
        best.instances,
        best.threads,
        cap,
        "measured",
        reason,
        tuple(trials + batch_trials[1:]),
        clock() - began,
        session_mb,
    )
