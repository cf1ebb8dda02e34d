"""Which code a benchmark ran: the commit, and the served files changed since (a figure from an
uncommitted tree says so in its report's title)."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def commit() -> str:
    return git("rev-parse", "--short", "HEAD") or "unknown"


def uncommitted(prefixes: tuple[str, ...]) -> str:
    """ " + uncommitted changes to N served file(s) (...)", or "" for a clean tree."""
    changed = [ln[3:] for ln in git("status", "--porcelain").splitlines()]
    served = [c for c in changed if c.startswith(prefixes)]
    if not served:
        return ""
    return f" + uncommitted changes to {len(served)} served file(s) ({', '.join(served[:4])})"


def cpu_name() -> str:
    """The CPU's model name (Linux), else what platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    return next(
        (ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
        platform.processor(),
    )
