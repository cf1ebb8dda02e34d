"""The worker's memory: give back what bursts and loads leave behind, and keep a budget.

ONNX Runtime's CPU arena keeps the peak of every run (a batch-64 ResNet-50 run grew the worker
from 411 MB to 1.9 GB for good), and glibc keeps freed heap. Large runs therefore shrink the
arena when they end (ORT's `memory.enable_memory_arena_shrinkage` run option) and the heap is
trimmed; small runs keep the arena, whose reuse is what makes them fast.
"""

from __future__ import annotations

import ctypes
import functools
import logging

import onnxruntime as ort
import psutil

logger = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)

# A run whose inputs reach this size shrinks the arena after itself: a batch of about 7
# ImageNet images and up. Smaller runs (every batch-1 CNN run, any MLP batch) keep it: shrinking
# costs them a fresh allocation per run, and what they leave in the arena is small.
SHRINK_MIN_INPUT_BYTES = 4 << 20


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def release_free_memory() -> None:
    """Hand the heap that loading, warm-up and large runs freed back to the OS (glibc keeps it
    otherwise): about 35 MB less idle RSS with the two demo models. No-op without glibc."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def limit_malloc_arenas(count: int) -> None:
    """Cap glibc's per-thread heaps (8 per core by default). Every thread that allocates gets
    its own heap, and what tuning's trial threads and ONNX Runtime's pools leave in theirs is
    not given back: a worker that tuned its models at start held 58 MB more than the same
    worker reading the layouts from the cache; with 2 heaps, 16 MB. Call before threads start;
    no-op without glibc."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, count)


def shrinking_run_options() -> ort.RunOptions:
    """Run options that hand the CPU arena's extra chunks back when the run ends."""
    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / (1 << 20)


def over_budget(budget_mb: int, before_mb: float) -> str | None:
    """Why the version just loaded must not stay (the worker is over `budget_mb`), or None.
    Call after the load's garbage was released, so only what it keeps counts."""
    if not budget_mb:
        return None
    now = rss_mb()
    if now <= budget_mb:
        return None
    return (
        f"loading it took the worker to {now:.0f} MB, over [worker] max_memory_mb = "
        f"{budget_mb} (this version needs about {max(0.0, now - before_mb):.0f} MB); raise "
        "the budget, set fewer instances in model.toml, or unload another model"
    )
