"""The status view's frames: what a person must see at 80x24, what a big terminal adds, how a
lost server looks; plus the sparkline, the key reader and the live loop against a fake server."""

from __future__ import annotations

import copy
import io
import os
import pty
import re
import signal
import termios
import threading
import time
from typing import Any

import pytest
from rich.console import Console

from inferencehub.client import ClientError, ServerUnreachableError
from inferencehub.status_live import describe_error, key_reader, run_live
from inferencehub.status_view import BLOCKS, render, sparkline

URL = "http://127.0.0.1:8000"
HISTORY = [0, 0, 4, 8, 12, 16, 20, 24, 28, 32] * 6  # 60 s, oldest first


def process(role: str, pid: int, uptime_s: float, restarts: int = 0, **extra: Any) -> dict:
    return {
        "role": role, "pid": pid, "state": "running", "uptime_s": uptime_s,
        "restarts": restarts, "rss_bytes": 100 << 20, "cpu_percent": 12.0, "last_exit": None,
        **extra,
    }  # fmt: skip


def traffic(name: str, version: str, rate: float, p50: float, history: list[int]) -> dict:
    return {
        "name": name, "version": version, "requests": 51234, "errors": 12, "error_rate": 0.0002,
        "latency": {"p50_ms": 99.0, "p95_ms": 99.0, "p99_ms": 99.0},
        "requests_per_s": rate, "recent_error_rate": 0.012,
        "recent_latency": {"p50_ms": p50, "p95_ms": 13.2, "p99_ms": 131.0},
        "avg_batch_size": 2.6, "queue_depth": 3, "requests_history": history,
    }  # fmt: skip


SNAPSHOT: dict[str, Any] = {
    "url": URL,
    "version": "0.1.0",
    "uptime_s": 5.0,  # the gateway's; the header shows the supervisor's
    "worker_serving": True,
    "supervisor": None,
    "processes": [
        process("supervisor", 4101, 3725.0),
        process("gateway", 4123, 3721.0),
        process("worker", 4377, 65.0, restarts=1, last_exit="code -9 (killed by SIGKILL)"),
    ],
    "door": {
        "auth": True,
        "keys": 3,
        "rate_limit_per_s": 50.0,
        "rate_limited": 17,
        "unauthenticated": 4,
        "in_flight": 6,
        "max_in_flight": 1024,
    },
    "models": [
        {
            "name": "efficientnet",
            "default_version": "1",
            "versions": [
                {"version": "1", "state": "READY", "provider": "CPUExecutionProvider"},
                {"version": "2", "state": "READY", "provider": "CPUExecutionProvider"},
            ],
            "routing": {
                "labels": {"stable": "1", "canary": "2"},
                "split": {"1": 75.0, "2": 25.0},
                "sticky": True,
                "canary": {
                    "version": "2",
                    "baseline": "1",
                    "state": "RUNNING",
                    "percent": 25.0,
                    "step": 1,
                    "ramp": [5, 25, 50, 100],
                    "every_s": 120.0,
                    "max_error_rate": 0.01,
                    "max_p99_ratio": 1.5,
                    "reason": "",
                },
            },
        },
        {
            "name": "scale",
            "default_version": "1",
            "versions": [
                {"version": "1", "state": "READY", "provider": "CPUExecutionProvider"},
                {
                    "version": "3",
                    "state": "FAILED",
                    "provider": "CPUExecutionProvider",
                    "error": "bad ONNX: truncated file",
                },
            ],
            "routing": {"labels": {}, "split": {}, "shadow": {"version": "3", "fraction": 0.05}},
        },
    ],
    "traffic": [
        traffic("efficientnet", "1", 37.4, 7.9, HISTORY),
        traffic("efficientnet", "2", 12.6, 9.4, [h // 4 for h in HISTORY]),
        traffic("scale", "1", 0.0, 0.0, [0] * 60),
    ],
}


def frame(
    snapshot: dict[str, Any] | None,
    width: int = 80,
    height: int | None = 24,
    error: str | None = None,
) -> list[str]:
    console = Console(width=width, height=height or 25, record=True, file=io.StringIO())
    console.print(render(snapshot, error, url=URL, width=width, height=height, footer="q quit"))
    return console.export_text().rstrip("\n").split("\n")


def row(lines: list[str], *first_words: str) -> list[str]:
    """The line whose leading words are `first_words`, split into words."""
    return next(w for line in lines if (w := line.split())[: len(first_words)] == [*first_words])


def sparks(lines: list[str]) -> list[str]:
    return [w for line in lines for w in line.split() if set(w) <= set(BLOCKS)]


def test_80x24_fits_and_shows_processes_models_traffic_and_the_door() -> None:
    lines = frame(SNAPSHOT)
    assert len(lines) == 24 and lines[-1] == "q quit"  # the footer sits on the last line
    assert max(len(line) for line in lines) <= 80
    assert "0.1.0" in lines[0] and URL in lines[0] and "up 1h02m" in lines[0]
    assert "worker serving" in lines[0]
    assert row(lines, "supervisor") == [
        "supervisor",
        "4101",
        "running",
        "1h02m",
        "0",
        "100M",
        "12%",
    ]
    assert row(lines, "worker")[:5] == ["worker", "4377", "running", "1m05s", "1"]
    assert row(lines, "gateway")[1] == "4123"
    text = "\n".join(lines)
    assert "75%, stable" in text and "25%, canary step 2/4" in text and "shadow 5%" in text
    assert "FAILED" in text and "canary 2 vs 1: at 25 % (step 2/4" in text
    assert text.count("canary") == 2  # the rollout's "canary" label is not said twice
    # recent (last 10 s) numbers, not the since-start ones (99.0 ms, 51234 requests)
    recent = row(lines, "efficientnet", "1", "37.4")
    assert recent[2:9] == ["37.4", "7.9", "13.2", "131", "1.2%", "2.6", "3"]
    assert "99.0" not in text and "51234" not in text
    assert row(lines, "scale", "1", "0.0")[3:8] == ["-"] * 5  # idle: nothing to measure
    assert len(sparks(lines)) == 3 and all(len(s) >= 8 for s in sparks(lines))
    assert "auth on" in text and "3 active keys" in text and "17 rate-limited" in text
    assert "4 unauthenticated refused" in text and "in flight 6/1024" in text


def test_a_big_terminal_shows_more() -> None:
    small, big = frame(SNAPSHOT), frame(SNAPSHOT, width=160, height=50)
    assert len(big) == 50 and max(len(line) for line in big) <= 160
    text = "\n".join(big)
    assert "code -9 (killed by SIGKILL)" in text and "bad ONNX: truncated file" in text
    assert row(big, "efficientnet", "1", "37.4")[9:11] == ["51234", "12"]  # since-start totals
    assert "p99 <= x1.5)" in text  # the whole canary line
    assert [len(s) for s in sparks(big)] == [60, 60, 60]  # one block per second
    assert all(len(s) < 60 for s in sparks(small))
    assert sparks(big)[0] == sparkline(HISTORY, 60)


def test_a_crowded_hub_is_cut_to_fit_with_a_count_of_what_is_hidden() -> None:
    crowded = copy.deepcopy(SNAPSHOT)
    for i in range(12):
        crowded["models"].append(
            {"name": f"m{i}", "default_version": "1", "routing": {},
             "versions": [{"version": "1", "state": "READY", "provider": "CPUExecutionProvider"}]}
        )  # fmt: skip
        crowded["traffic"].append(traffic(f"m{i}", "1", 1.0, 1.0, [1] * 60))
    lines = frame(crowded)
    assert len(lines) == 24 and max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "… " in text and text.count(" more") == 2  # models and traffic both cut
    shown_models = sum(1 for line in lines if line.split()[:1] in (["efficientnet"], ["scale"]))
    hidden = sum(int(line.split()[1]) for line in lines if line.startswith("… "))
    assert hidden > 0 and shown_models > 0
    assert "door: auth on" in text  # the door folds into one line
    assert "worker" in text and "4377" in text  # processes always stay


def test_without_a_height_once_shows_everything() -> None:
    crowded = copy.deepcopy(SNAPSHOT)
    crowded["traffic"] += [traffic(f"m{i}", "1", 1.0, 1.0, [1] * 60) for i in range(30)]
    lines = frame(crowded, height=None)
    assert sum(1 for line in lines if re.match(r"m\d+ ", line)) == 30
    assert " more" not in "\n".join(lines)


def test_an_unreachable_server_is_one_red_line_over_the_dimmed_last_data() -> None:
    exc = ServerUnreachableError(
        "unavailable", f"cannot reach InferenceHub at {URL}: [Errno 111] Connection refused"
    )
    error = describe_error(exc, URL)
    assert error == f"cannot reach {URL}: connection refused — retrying"
    console = Console(width=80, height=24, record=True, file=io.StringIO(), force_terminal=True)
    console.print(render(SNAPSHOT, error, url=URL, width=80, height=24, footer="q quit"))
    lines = console.export_text(clear=False).rstrip("\n").split("\n")
    assert lines[1] == error and len(lines) == 24
    styled = console.export_text(styles=True)
    pid_line = next(line for line in styled.splitlines() if "4377" in line)
    assert "\x1b[2m" in pid_line or "\x1b[2;" in pid_line  # dim
    nothing_yet = frame(None, error=error)
    assert nothing_yet[:2] == [f"InferenceHub {URL}", error] and "4377" not in "\n".join(
        nothing_yet
    )


def test_a_refusal_says_what_the_server_answered() -> None:
    error = describe_error(ClientError(401, "missing API key"), URL)
    assert error == f"{URL} answered 401: missing API key — retrying"


def test_missing_fields_show_a_dash() -> None:
    sparse = {"models": [{"name": "m", "versions": [{"version": "1"}]}], "traffic": [{}]}
    lines = frame(sparse, height=None)
    assert "up -" in lines[0] and "worker not serving" in lines[0]
    assert "no process data" in lines and lines[-3].startswith("door") and lines[-2] == "-"
    assert row(lines, "m", "1")[2:] == ["-", "-"]
    assert row(lines, "-", "-")[2:9] == ["-"] * 7


@pytest.mark.parametrize(
    ("values", "width", "expected"),
    [
        ([0, 1, 2, 4], 10, "▁▃▅█"),  # 0 is the lowest block, the peak the highest
        ([0, 0, 0], 10, "▁▁▁"),
        ([3, 3], 10, "██"),
        ([0] * 30 + [10] * 30, 2, "▁█"),  # averaged down to the width
        ([0] * 30 + [10] * 30, 3, "▁▅█"),
        ([], 10, ""),
        ([5, 5], 0, ""),
    ],
)
def test_sparkline(values: list[float], width: int, expected: str) -> None:
    assert sparkline(values, width) == expected


def test_key_reader_reads_single_keys_and_restores_the_terminal() -> None:
    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        with open(slave, closefd=False) as stdin, key_reader(stdin) as read:
            assert not termios.tcgetattr(slave)[3] & termios.ICANON  # no Enter needed
            assert read(0.05) == ""
            os.write(master, b"q")
            assert read(1.0) == "q"
        assert termios.tcgetattr(slave) == before
    finally:
        os.close(master)
        os.close(slave)


def test_key_reader_ignores_a_stdin_that_is_not_a_terminal() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"q")
    try:
        with open(read_end, closefd=False) as stdin, key_reader(stdin) as read:
            assert read(0.01) == ""
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize(("reachable", "quit_by"), [(True, "q"), (False, "q"), (True, "SIGTERM")])
def test_live_view_draws_until_q_or_sigterm_and_exits_0(reachable: bool, quit_by: str) -> None:
    def fetch() -> dict[str, Any]:
        if not reachable:
            raise ServerUnreachableError("unavailable", f"x at {URL}: Connection refused")
        return SNAPSHOT

    master, slave = pty.openpty()
    screen = io.StringIO()
    console = Console(file=screen, width=80, height=24, force_terminal=True)

    handled: list[bool] = []

    first_frame = "4377" if reachable else "cannot reach"

    def press_q() -> None:
        # Once the first frame is on screen, the view is in its key loop: the terminal is in
        # cbreak mode and the SIGTERM handler installed.
        deadline = time.monotonic() + 10
        while first_frame not in screen.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        handled.append(signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL)
        if quit_by == "SIGTERM" and handled[0]:  # never kill pytest itself
            os.kill(os.getpid(), signal.SIGTERM)  # recorded by run_live's handler
        else:
            os.write(master, b"q")

    presser = threading.Thread(target=press_q)
    presser.start()
    try:
        before = termios.tcgetattr(slave)
        with open(slave, closefd=False) as stdin:
            started = time.monotonic()
            assert run_live(fetch, URL, console, 0.1, stdin) == 0
        assert time.monotonic() - started < 3
        assert termios.tcgetattr(slave) == before
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler given back
    finally:
        presser.join()
        os.close(master)
        os.close(slave)
    assert handled == [True]
    drawn = screen.getvalue()
    assert "\x1b[?1049h" in drawn and drawn.rstrip().endswith("\x1b[?1049l")  # screen restored
    if reachable:
        assert "4377" in drawn and "efficientnet" in drawn
    else:
        assert f"cannot reach {URL}: connection refused — retrying" in drawn


def test_several_workers_show_their_load_in_the_door() -> None:
    from inferencehub.status_view import _worker_parts

    assert _worker_parts([{"name": "worker", "address": "unix:///x", "serving": True}]) == []
    parts = _worker_parts(
        [
            {"name": "worker-0", "address": "unix:///a", "serving": True, "outstanding": 3},
            {"name": "10.0.0.5:9000", "address": "10.0.0.5:9000", "serving": False},
        ]
    )
    assert parts == ["worker-0 up 3 out", "10.0.0.5:9000 DOWN - out"]
