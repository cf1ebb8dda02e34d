"""download(): resume, If-Range, digest and error paths against a real local HTTP server."""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rich.console import Console

from inferencehub.bundles.download import (
    RETRIES,
    DownloadError,
    DownloadRejectedError,
    download,
    sha256_of,
)
from inferencehub.errors import ErrorCode

BODY = bytes(range(256)) * 40  # 10240 bytes, no repeats within a cut's length
CUT = 1000


@dataclass
class Origin:
    """What the test server serves, how it misbehaves, and the request headers it saw."""

    body: bytes = BODY
    etag: str = '"v1"'
    honor_range: bool = True
    honor_if_range: bool = True
    cuts_left: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def ranges(self) -> list[str | None]:
        return [r.get("range") for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: every response closes its connection, so a cut is an EOF the client must notice.
    server: _Server

    def do_GET(self) -> None:
        origin = self.server.origin
        origin.requests.append({k.lower(): v for k, v in self.headers.items()})
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/model.onnx")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path != "/model.onnx":
            self.send_error(404)
            return
        body, start, status = origin.body, 0, 200
        wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        fresh = if_range is None or if_range == origin.etag or not origin.honor_if_range
        if wanted and origin.honor_range and fresh:
            start, status = int(wanted[1]), 206
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        payload = body[start:]
        self.send_response(status)
        self.send_header("ETag", origin.etag)
        self.send_header("Content-Length", str(len(payload)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if origin.cuts_left:
            origin.cuts_left -= 1
            payload = payload[:CUT]  # the whole length was announced; the socket closes early
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up on purpose (a restart); nothing to report

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread: a clean shutdown

    def __init__(self, origin: Origin) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.origin = origin


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default client honours proxy variables; 127.0.0.1 must be reached directly."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def origin() -> Origin:
    return Origin()


@pytest.fixture
def url(origin: Origin) -> Iterator[str]:
    server = _Server(origin)
    # A short poll interval only makes shutdown() return sooner; no test waits on it.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), name="origin")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/model.onnx"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _get(url: str, dest: Path, sha256: str | None = None, *, max_bytes: int = 16 << 30) -> Path:
    return download(url, dest, sha256=sha256, progress=False, max_bytes=max_bytes)


def _leftovers(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir())


SHA = hashlib.sha256(BODY).hexdigest()


def test_full_download_with_matching_digest(url: str, tmp_path: Path) -> None:
    dest = tmp_path / "out" / "model.onnx"
    assert _get(url, dest, SHA.upper()) == dest
    assert dest.read_bytes() == BODY
    assert sha256_of(dest) == SHA
    assert _leftovers(dest) == ["model.onnx"]


def test_digest_mismatch_leaves_neither_file_nor_part(url: str, tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    with pytest.raises(DownloadRejectedError) as err:
        _get(url, dest, "0" * 64)
    assert err.value.message == f"sha256 mismatch for {url}: expected {'0' * 64}, got {SHA}"
    assert err.value.code is ErrorCode.INVALID_ARGUMENT
    assert _leftovers(dest) == []


def test_dropped_connection_resumes_within_the_call(
    url: str, origin: Origin, tmp_path: Path
) -> None:
    origin.cuts_left = 1
    dest = _get(url, tmp_path / "model.onnx", SHA)
    assert dest.read_bytes() == BODY
    assert origin.ranges == [None, f"bytes={CUT}-"]
    assert origin.requests[1]["if-range"] == '"v1"'


def test_part_from_an_earlier_run_is_resumed(url: str, origin: Origin, tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    origin.cuts_left = 1 + RETRIES  # every attempt of the first run is cut
    kept = CUT * (1 + RETRIES)
    with pytest.raises(DownloadError) as err:
        _get(url, dest, SHA)
    assert f"{kept} bytes are kept in {dest}.part" in err.value.message
    assert "run the same command again to resume" in err.value.message
    assert not dest.exists()

    origin.requests.clear()
    _get(url, dest, SHA)
    assert dest.read_bytes() == BODY
    assert origin.ranges == [f"bytes={kept}-"]
    assert origin.requests[0]["if-range"] == '"v1"'
    assert _leftovers(dest) == ["model.onnx"]


def test_part_without_metadata_is_resumed(url: str, origin: Origin, tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    dest.with_name("model.onnx.part").write_bytes(BODY[:3000])
    _get(url, dest, SHA)
    assert dest.read_bytes() == BODY
    assert origin.ranges == ["bytes=3000-"]
    assert "if-range" not in origin.requests[0]


def test_server_ignoring_range_starts_over(url: str, origin: Origin, tmp_path: Path) -> None:
    origin.honor_range = False
    dest = tmp_path / "model.onnx"
    dest.with_name("model.onnx.part").write_bytes(b"x" * 3000)  # would corrupt if appended to
    _get(url, dest, SHA)
    assert dest.read_bytes() == BODY
    assert origin.ranges == ["bytes=3000-"]


def _interrupted_run(url: str, origin: Origin, dest: Path) -> None:
    origin.cuts_left = 1 + RETRIES
    with pytest.raises(DownloadError):
        _get(url, dest)
    origin.requests.clear()


def test_changed_etag_between_runs_starts_over(url: str, origin: Origin, tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    _interrupted_run(url, origin, dest)
    origin.body, origin.etag = BODY[::-1], '"v2"'
    _get(url, dest, hashlib.sha256(BODY[::-1]).hexdigest())
    assert dest.read_bytes() == BODY[::-1]
    assert origin.requests[0]["if-range"] == '"v1"'
    assert origin.ranges == [f"bytes={CUT * (1 + RETRIES)}-"]  # answered 200: no second GET


def test_changed_etag_on_a_206_restarts_when_the_server_ignores_if_range(
    url: str, origin: Origin, tmp_path: Path
) -> None:
    dest = tmp_path / "model.onnx"
    _interrupted_run(url, origin, dest)
    origin.body, origin.etag, origin.honor_if_range = BODY[::-1], '"v2"', False
    _get(url, dest)
    assert dest.read_bytes() == BODY[::-1]
    assert origin.ranges == [f"bytes={CUT * (1 + RETRIES)}-", None]


def test_complete_part_answered_416_is_finished_by_the_digest(
    url: str, origin: Origin, tmp_path: Path
) -> None:
    dest = tmp_path / "model.onnx"
    dest.with_name("model.onnx.part").write_bytes(BODY)
    _get(url, dest, SHA)
    assert dest.read_bytes() == BODY
    assert origin.ranges == [f"bytes={len(BODY)}-"]


def test_part_longer_than_the_servers_file_starts_over(
    url: str, origin: Origin, tmp_path: Path
) -> None:
    dest = tmp_path / "model.onnx"
    dest.with_name("model.onnx.part").write_bytes(BODY + b"extra")
    _get(url, dest, SHA)
    assert dest.read_bytes() == BODY
    assert origin.ranges == [f"bytes={len(BODY) + 5}-", None]


def test_redirect_is_followed(url: str, tmp_path: Path) -> None:
    dest = _get(url.replace("/model.onnx", "/redirect"), tmp_path / "model.onnx", SHA)
    assert dest.read_bytes() == BODY


def test_not_found_names_status_and_url(url: str, tmp_path: Path) -> None:
    missing = url.replace("/model.onnx", "/missing.onnx")
    with pytest.raises(DownloadRejectedError) as err:
        _get(missing, tmp_path / "model.onnx")
    assert err.value.message == f"{missing} answered HTTP 404 Not Found"
    assert _leftovers(tmp_path / "model.onnx") == []


def test_body_over_max_bytes_is_refused(url: str, tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    with pytest.raises(DownloadRejectedError, match="over the limit of 1000 bytes"):
        _get(url, dest, max_bytes=1000)
    assert _leftovers(dest) == []


def test_unreachable_server_says_nothing_was_received(url: str, tmp_path: Path) -> None:
    server = _Server(Origin())  # bound, then closed: its port refuses connections
    port = server.server_address[1]
    server.server_close()
    with pytest.raises(DownloadError, match="nothing was received"):
        _get(f"http://127.0.0.1:{port}/model.onnx", tmp_path / "model.onnx")


@pytest.mark.parametrize("bad", ["ftp://example.com/model.onnx", "/tmp/model.onnx", "http://"])
def test_non_http_url_is_refused(bad: str, tmp_path: Path) -> None:
    with pytest.raises(DownloadRejectedError, match=r"http://|invalid URL"):
        _get(bad, tmp_path / "model.onnx")


def test_non_http_scheme_message_names_the_schemes(tmp_path: Path) -> None:
    with pytest.raises(DownloadRejectedError) as err:
        _get("ftp://example.com/model.onnx", tmp_path / "model.onnx")
    assert "only http:// and https:// URLs" in err.value.message


@pytest.mark.parametrize("bad", ["abc", "0" * 63, "g" * 64, SHA + "0"])
def test_bad_sha256_is_refused_before_any_request(
    bad: str, url: str, origin: Origin, tmp_path: Path
) -> None:
    with pytest.raises(DownloadRejectedError, match="expected 64 hex characters"):
        _get(url, tmp_path / "model.onnx", bad)
    assert origin.requests == []
    assert _leftovers(tmp_path / "model.onnx") == []


def test_progress_bar_draws_on_the_given_console(url: str, origin: Origin, tmp_path: Path) -> None:
    origin.cuts_left = 1
    out = io.StringIO()
    console = Console(file=out, width=100, color_system=None)
    download(url, tmp_path / "model.onnx", console=console)
    assert "model.onnx" in out.getvalue()
    assert "10.2/10.2 kB" in out.getvalue()


def test_meta_file_records_url_and_validator(url: str, origin: Origin, tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    _interrupted_run(url, origin, dest)
    meta = json.loads(dest.with_name("model.onnx.part.meta").read_text())
    assert meta == {"url": url, "validator": '"v1"'}
