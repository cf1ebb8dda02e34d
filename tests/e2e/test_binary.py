"""The standalone binary (`python packaging/build.py` -> dist/inferencehub) plays every role.

It serves, predicts, reports status and stops cleanly from one file; its children reuse the one
directory it unpacked itself into; a terminal's Ctrl+C stops it gracefully; and no process nor
_MEI* directory outlives it, even when its launcher is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from inferencehub import __version__, runtime
from tests.hub import free_tcp_port

# The first test may build the binary (minutes on a 2-core machine).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
BINARY = ROOT / "dist" / "inferencehub"
CAT = ROOT / "examples" / "cat.jpg"
JET = ROOT / "examples" / "jet.jpg"
START_TIMEOUT_S = 90.0


def _newest_source() -> Path:
    sources = [
        *(ROOT / "inferencehub").rglob("*.py"),
        *(ROOT / "packaging").glob("*.py"),
        ROOT / "packaging" / "inferencehub.spec",
        ROOT / "pyproject.toml",
    ]
    return max(sources, key=lambda path: path.stat().st_mtime)


def _say(config: pytest.Config, line: str) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    else:
        print(line, file=sys.stderr)


@pytest.fixture(scope="session")
def binary(request: pytest.FixtureRequest) -> Path:
    """dist/inferencehub, (re)built with packaging/build.py when missing or stale."""
    newest = _newest_source()
    if not BINARY.is_file():
        why = "it does not exist"
    elif newest.stat().st_mtime > BINARY.stat().st_mtime:
        why = f"{newest.relative_to(ROOT)} is newer"
    elif not (BINARY.parent / "models").is_dir():
        why = "dist/models is missing"
    else:
        return BINARY
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        pytest.fail("PyInstaller is not installed: pip install -e '.[test]'")
    _say(request.config, f"\nbuilding dist/inferencehub because {why} (takes minutes)...")
    started = time.monotonic()
    built = subprocess.run(
        [sys.executable, "packaging/build.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    if built.returncode != 0:
        pytest.fail(f"packaging/build.py failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}")
    _say(request.config, f"built in {time.monotonic() - started:.0f} s")
    return BINARY


@pytest.fixture
def private_tmp() -> Iterator[Path]:
    """TMPDIR for the binary: where it unpacks itself and puts its runtime dir. Short, because
    the worker's socket lives below it; private, so that others' _MEI* dirs do not count."""
    with tempfile.TemporaryDirectory(prefix="ih-bin-", dir="/tmp") as tmp:
        yield Path(tmp)


def env_for(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_PYI_", "INFERENCEHUB_"))}
    env.pop("XDG_RUNTIME_DIR", None)  # the runtime dir goes to TMPDIR, where we watch it
    return {**env, "TMPDIR": str(tmp), "XDG_DATA_HOME": str(tmp / "xdg")}


def unpacked_dirs(tmp: Path) -> list[str]:
    return sorted(path.name for path in tmp.glob("_MEI*"))


@dataclass
class Running:
    process: subprocess.Popen[str]
    http_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def tree(self) -> tuple[psutil.Process, psutil.Process, list[psutil.Process]]:
        """The launcher (one-file bootloader), the supervisor (its one child) and the
        supervisor's children."""
        launcher = psutil.Process(self.process.pid)
        (supervisor,) = launcher.children()
        return launcher, supervisor, supervisor.children()

    def processes(self) -> list[psutil.Process]:
        launcher, supervisor, children = self.tree()
        return [launcher, supervisor, *children]


@contextlib.contextmanager
def up(binary: Path, tmp: Path, *args: str, cwd: Path = ROOT) -> Iterator[Running]:
    """`dist/inferencehub up ARGS` on free ports until it is ready and has said so; killed if a
    test fails."""
    http_port, grpc_port = free_tcp_port(), free_tcp_port()
    log = tmp / "up.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [binary, "up", *args, "--http-port", str(http_port), "--grpc-port", str(grpc_port)],
            cwd=cwd,
            env=env_for(tmp),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    running = Running(process, f"http://127.0.0.1:{http_port}", log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, (
                f"up exited with {process.returncode}:\n{running.output()}"
            )
            assert time.monotonic() < deadline, f"not ready in time:\n{running.output()}"
            # The gateway answers ready a moment before the supervisor prints its ready line.
            with contextlib.suppress(httpx.HTTPError):
                if (
                    httpx.get(f"{running.http_url}/v2/health/ready").status_code == 200
                    and "InferenceHub ready" in running.output()
                ):
                    break
            time.sleep(0.1)
        yield running
    finally:
        if process.poll() is None:
            with contextlib.suppress(psutil.Error):
                for proc in psutil.Process(process.pid).children(recursive=True):
                    proc.kill()
            process.kill()
            process.wait()


def run(binary: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *args],
        cwd=ROOT,
        env=env_for(tmp),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def pgids(processes: list[psutil.Process]) -> set[int]:
    return {os.getpgid(p.pid) for p in processes}


def leftovers(groups: set[int], timeout_s: float = 30.0) -> list[str]:
    """Processes still in any of these process groups once `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            with contextlib.suppress(psutil.Error, OSError):
                if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) in groups:
                    left.append(f"{proc.pid} {' '.join(proc.info['cmdline'] or [])}")
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def test_version(binary: Path, private_tmp: Path) -> None:
    result = run(binary, private_tmp, "version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"inferencehub {__version__}"
    assert unpacked_dirs(private_tmp) == []


def test_serves_predicts_reports_and_stops_on_sigterm(binary: Path, private_tmp: Path) -> None:
    assert unpacked_dirs(private_tmp) == []
    with up(binary, private_tmp, "--models", "models") as hub:
        launcher, supervisor, children = hub.tree()
        assert sorted(c.cmdline()[1] for c in children) == ["gateway", "worker"], hub.output()
        assert all(p.exe() == str(binary) for p in hub.processes())
        # The children reuse the launcher's unpacked dir: one extraction for three roles.
        assert len(unpacked_dirs(private_tmp)) == 1
        runtime_dirs = list(private_tmp.glob("inferencehub-*"))
        assert len(runtime_dirs) == 1
        assert f"models {ROOT / 'models'}" in hub.output()

        predicted = run(binary, private_tmp, "predict", str(CAT), "--model", "efficientnet",
                        "--url", hub.http_url)  # fmt: skip
        assert predicted.returncode == 0, predicted.stderr
        assert "tiger cat" in predicted.stdout or "Egyptian cat" in predicted.stdout

        listed = run(binary, private_tmp, "models", "--json", "--url", hub.http_url)
        assert listed.returncode == 0, listed.stderr
        models = {m["name"]: m for m in json.loads(listed.stdout)["models"]}
        assert sorted(models) == ["efficientnet", "ocr", "ocr-det", "ocr-rec"]
        assert {v["state"] for m in models.values() for v in m["versions"]} == {"READY"}
        # The web console's files travel inside the binary (PyInstaller datas).
        page = httpx.get(hub.http_url, headers={"accept": "text/html"}, timeout=10)
        assert page.status_code == 200 and b"<title>InferenceHub</title>" in page.content
        assert httpx.get(f"{hub.http_url}/ui/console.js", timeout=10).status_code == 200
        read = run(binary, private_tmp, "predict", str(JET), "--model", "ocr", "--json",
                   "--url", hub.http_url)  # fmt: skip
        assert read.returncode == 0, read.stderr
        assert "DANGER" in [line["text"] for line in json.loads(read.stdout)["lines"]]

        shown = run(binary, private_tmp, "status", "--json", "--url", hub.http_url)
        assert shown.returncode == 0, shown.stderr
        status = json.loads(shown.stdout)
        assert status["version"] == __version__
        # The supervisor is the launcher's child, and says so in its state file.
        assert {p["pid"] for p in status["processes"]} == {
            supervisor.pid,
            *(c.pid for c in children),
        }
        assert launcher.pid not in {p["pid"] for p in status["processes"]}

        groups = pgids(hub.processes())
        started = time.monotonic()
        hub.process.send_signal(signal.SIGTERM)
        code = hub.process.wait(timeout=30)
        assert code == 0, hub.output()
        assert time.monotonic() - started < 30
        assert leftovers(groups) == []
        assert not runtime_dirs[0].exists()
        assert unpacked_dirs(private_tmp) == []
        out = hub.output()
        assert out.index("gateway stopped") < out.index("worker stopping")
        assert "Traceback" not in out


def test_ctrl_c_stops_gracefully_and_serves_the_models_beside_the_binary(
    binary: Path, private_tmp: Path
) -> None:
    """A terminal sends SIGINT to the whole foreground process group. The launcher forwards
    what it gets, so the supervisor must not get it twice (the second Ctrl+C kills)."""
    elsewhere = private_tmp / "cwd"
    elsewhere.mkdir()  # no ./models here and no --models: the ones beside the binary
    with up(binary, private_tmp, cwd=elsewhere) as hub:
        assert f"models {binary.parent / 'models'}" in hub.output()
        groups = pgids(hub.processes())
        os.killpg(hub.process.pid, signal.SIGINT)
        code = hub.process.wait(timeout=30)
        out = hub.output()
        assert code == 0, out
        assert "killing it" not in out
        assert out.index("gateway stopped") < out.index("worker stopping")
        assert leftovers(groups) == []
        assert unpacked_dirs(private_tmp) == []


def test_killing_the_launcher_leaves_no_process_nor_unpacked_dir(
    binary: Path, private_tmp: Path
) -> None:
    """SIGKILL to the launcher's group (what a test harness or `kill -9 %1` does): the app
    gets SIGTERM from the kernel, stops its children and removes the unpacked dir itself."""
    with up(binary, private_tmp, "--models", "models") as hub:
        groups = pgids(hub.processes())
        os.killpg(hub.process.pid, signal.SIGKILL)
        assert hub.process.wait(timeout=10) == -signal.SIGKILL
        assert leftovers(groups) == [], hub.output()
        assert unpacked_dirs(private_tmp) == []
        assert "supervisor stopping" in hub.output()


def test_probe_provider_role_runs_frozen(binary: Path, private_tmp: Path) -> None:
    """The worker's crash-safe provider trial re-executes the binary as `probe-provider`."""
    model = ROOT / "models" / "efficientnet" / "1" / "model.onnx"
    result = run(binary, private_tmp, "probe-provider", "--provider", "CPUExecutionProvider",
                 "--model", str(model))  # fmt: skip
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["ok"] is True
    assert answer["provider"] == "CPUExecutionProvider"
    assert unpacked_dirs(private_tmp) == []


# The frozen-only helpers, from source (no binary needed).


def test_default_models_dir_from_source_is_relative_models(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert runtime.default_models_dir() == Path("models")


def test_default_models_dir_of_a_binary_prefers_cwd_then_beside_it(
    tmp_path: Path, monkeypatch
) -> None:
    app, cwd = tmp_path / "app", tmp_path / "cwd"
    (app / "models").mkdir(parents=True)
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app / "inferencehub"))
    assert runtime.default_models_dir() == (app / "models").resolve()
    (cwd / "models").mkdir()
    assert runtime.default_models_dir() == Path("models")


def test_onefile_detection_and_setup_are_no_ops_from_source(monkeypatch) -> None:
    assert runtime.frozen_onefile() is False
    pgid = os.getpgid(0)
    runtime.follow_onefile_launcher(["inferencehub", "up"])
    assert os.getpgid(0) == pgid
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", "/opt/inferencehub/_internal", raising=False)
    assert runtime.frozen_onefile() is False  # one-folder: nothing unpacked, no launcher
    monkeypatch.setattr(sys, "_MEIPASS", "/tmp/_MEI123456abcdef")
    assert runtime.frozen_onefile() is True
    runtime.follow_onefile_launcher(["inferencehub", "models"])  # only `up` leaves the group
    assert os.getpgid(0) == pgid
