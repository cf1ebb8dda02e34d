"""Start-to-ready time and idle memory of `inferencehub up`, from a binary or from source.

    python packaging/measure.py                                   # dist/inferencehub, 5 runs
    python packaging/measure.py dist/inferencehub dist/inferencehub-dir/inferencehub source

Each run starts `TARGET up --models models` on free ports (rounds interleave the targets), times
from the start to the first 200 from /v2/health/ready, waits 2 s idle, reads the RSS of the
supervisor, gateway and worker (and of PyInstaller's one-file launcher, counted apart) with
psutil, sends SIGTERM and checks the exit code. It prints the medians as a Markdown table.
`source` means `python -m inferencehub`. Onefile runs unpack into a private TMPDIR that must
be empty again afterwards.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("up", "gateway", "worker")


@dataclass
class Run:
    ready_s: float
    rss_mb: dict[str, float]  # supervisor, gateway, worker, launcher
    pss_mb: float  # all processes together, shared pages counted once


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(target: str) -> list[str]:
    if target == "source":
        return [sys.executable, "-m", "inferencehub"]
    return [str(Path(target).resolve())]


def role_of(process: psutil.Process) -> str | None:
    return next((arg for arg in process.cmdline() if arg in ROLES), None)


def processes(top: psutil.Process) -> dict[str, psutil.Process]:
    """supervisor, gateway, worker (and launcher: a one-file binary's bootloader)."""
    found: dict[str, psutil.Process] = {}
    supervisor = top
    up_children = [c for c in top.children() if role_of(c) == "up"]
    if up_children:  # one-file: the launcher runs the app as its child
        found["launcher"], supervisor = top, up_children[0]
    found["supervisor"] = supervisor
    for child in supervisor.children():
        role = role_of(child)
        if role in ("gateway", "worker"):
            found[role] = child
    return found


def wait_ready(
    process: subprocess.Popen[bytes], url: str, started: float, timeout_s: float
) -> float:
    """Seconds from `started` to the first 200 from `url`."""
    while time.monotonic() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"up exited with {process.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"not ready after {timeout_s} s")


def run_once(target: str, models: Path, idle_s: float, timeout_s: float) -> Run:
    http_port, grpc_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="ih-measure-") as tmp:
        env = {**os.environ, "TMPDIR": tmp, "XDG_DATA_HOME": str(Path(tmp) / "xdg")}
        argv = [*command(target), "up", "--models", str(models)]
        argv += ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
        log = Path(tmp) / "up.log"
        started = time.monotonic()
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True
            )
        try:
            url = f"http://127.0.0.1:{http_port}/v2/health/ready"
            try:
                ready_s = wait_ready(process, url, started, timeout_s)
            except (RuntimeError, TimeoutError) as exc:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{target}: {exc}; its output ends:\n{tail}") from None
            time.sleep(idle_s)
            found = processes(psutil.Process(process.pid))
            rss = {name: p.memory_info().rss / 1e6 for name, p in found.items()}
            pss = sum(p.memory_full_info().pss for p in found.values()) / 1e6
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if code != 0:
            raise RuntimeError(f"{target}: up exited with {code} after SIGTERM")
        left = [p.name for p in Path(tmp).glob("_MEI*")]
        if left:
            raise RuntimeError(f"{target}: left {left} in TMPDIR")
    return Run(ready_s, rss, pss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=["dist/inferencehub"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds idle before reading RSS")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    runs: dict[str, list[Run]] = {t: [] for t in args.targets}
    for round_no in range(1, args.runs + 1):
        for target in args.targets:
            run = run_once(target, args.models.resolve(), args.idle, args.timeout)
            runs[target].append(run)
            total = sum(v for k, v in run.rss_mb.items() if k != "launcher")
            print(
                f"round {round_no} {target}: ready {run.ready_s:.2f} s, "
                f"RSS supervisor+gateway+worker {total:.0f} MB",
                file=sys.stderr,
            )
    print(
        f"\nmedians of {args.runs} runs; RSS in MB after {args.idle:g} s idle; "
        "sum = supervisor + gateway + worker\n"
    )
    print(
        "| target | start to ready | supervisor | gateway | worker | sum | "
        "one-file launcher | PSS of all |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for target, results in runs.items():

        def median(key: str, results: list[Run] = results) -> float:
            return statistics.median(r.rss_mb.get(key, 0.0) for r in results)

        total = statistics.median(
            sum(v for k, v in r.rss_mb.items() if k != "launcher") for r in results
        )
        ready = statistics.median(r.ready_s for r in results)
        pss = statistics.median(r.pss_mb for r in results)
        launcher = f"{median('launcher'):.0f}" if "launcher" in results[0].rss_mb else "-"
        print(
            f"| {target} | {ready:.2f} s | {median('supervisor'):.0f} | {median('gateway'):.0f} "
            f"| {median('worker'):.0f} | {total:.0f} | {launcher} | {pss:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
