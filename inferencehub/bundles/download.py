"""Resumable, digest-checked HTTP(S) download of a model bundle for `inferencehub pull`."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from inferencehub.errors import ErrorCode, HubError, first_line

logger = logging.getLogger(__name__)

RETRIES = 3
"""Extra attempts within one call after the connection drops; each resumes where it stopped."""

SCHEMES = ("http", "https")

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")
# Answers worth a later retry; every other status >= 400 will not change by running again.
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class DownloadError(HubError):
    """A download failed in a way that running the same command again may fix."""

    code = ErrorCode.UNAVAILABLE


class DownloadRejectedError(DownloadError):
    """The URL, the expected digest or the content is wrong; running again will not help."""

    code = ErrorCode.INVALID_ARGUMENT


class _TruncatedError(Exception):
    """The body ended before the length the server announced (retried like a dropped link)."""


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so a multi-GiB bundle never sits in memory."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    timeout_s: float = 30.0,
    progress: bool = True,
    console: Console | None = None,
    client: httpx.Client | None = None,
    max_bytes: int = 16 << 30,
) -> Path:
    """Download `url` to `dest`, resuming what an interrupted earlier run left behind.

    The body streams to `<dest>.part`; the server's ETag (or Last-Modified) is kept in
    `<dest>.part.meta` so a resume sends `If-Range` and a file changed on the server restarts
    instead of splicing two versions. `dest` appears only once the body is complete and,
    when `sha256` is given, matches it.

    Args:
        url: An http:// or https:// URL; redirects are followed.
        dest: Where the file ends up; its parent is created if missing.
        sha256: Expected hex digest (64 characters, any case); checked before `dest` appears.
        timeout_s: Connect and per-read timeout of the default client.
        progress: Draw a progress bar on `console`.
        console: Where the bar goes; stderr by default, so stdout stays scriptable.
        client: An httpx client to use instead of a new one (tests, proxies, custom CAs).
        max_bytes: Refuse bodies larger than this, announced or streamed.

    Returns:
        `dest`.

    Raises:
        DownloadRejectedError: A bad URL or digest argument (before any request), an HTTP
            error that retrying will not fix, a body over `max_bytes`, or a digest mismatch
            (the partial file is deleted).
        DownloadError: The network failed `RETRIES + 1` times in a row, or the server answered
            with a transient error; what was received is kept and the same command resumes.
    """
    _check_url(url)
    expected = _check_sha256(url, sha256)
    part = dest.with_name(dest.name + ".part")
    meta = dest.with_name(dest.name + ".part.meta")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create {dest.parent}: {first_line(exc)}") from exc

    http = client or httpx.Client(timeout=timeout_s, follow_redirects=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        disable=not progress,
    )
    try:
        with bar:
            task = bar.add_task(dest.name, total=None)
            _Transfer(url, part, meta, http, max_bytes, bar, task).run()
    finally:
        if client is None:
            http.close()

    if expected is not None:
        actual = sha256_of(part)
        if actual != expected:
            _discard(part, meta)
            raise DownloadRejectedError(
                f"sha256 mismatch for {url}: expected {expected}, got {actual}"
            )
    os.replace(part, dest)
    meta.unlink(missing_ok=True)
    return dest


def _check_url(url: str) -> None:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise DownloadRejectedError(f"invalid URL {url!r}: {first_line(exc)}") from exc
    if parsed.scheme not in SCHEMES:
        raise DownloadRejectedError(
            f"cannot download {url!r}: only http:// and https:// URLs are supported"
        )
    if not parsed.host:
        raise DownloadRejectedError(f"invalid URL {url!r}: no host")


def _check_sha256(url: str, sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    if not _SHA256_HEX.fullmatch(sha256):
        raise DownloadRejectedError(
            f"invalid --sha256 for {url}: expected 64 hex characters, got {sha256!r}"
        )
    return sha256.lower()


def _discard(part: Path, meta: Path) -> None:
    part.unlink(missing_ok=True)
    meta.unlink(missing_ok=True)


def _strong_validator(response: httpx.Response) -> str | None:
    """The validator If-Range may carry: a strong ETag, else Last-Modified (RFC 9110 13.1.5)."""
    etag = response.headers.get("etag")
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("last-modified")


@dataclass
class _Transfer:
    """One call's worth of attempts at filling `part`; the files on disk are the only state."""

    url: str
    part: Path
    meta: Path
    client: httpx.Client
    max_bytes: int
    bar: Progress
    task: TaskID

    def run(self) -> None:
        failure: Exception | None = None
        for attempt in range(1 + RETRIES):
            if attempt:
                logger.info("retrying %s from byte %d (%s)", self.url, self._offset(), failure)
            try:
                while not self._request():
                    logger.info("%s changed on the server; starting over", self.url)
                    _discard(self.part, self.meta)
                return
            except (httpx.TransportError, _TruncatedError) as exc:
                failure = exc
            except httpx.TooManyRedirects as exc:
                raise DownloadRejectedError(f"{self.url}: {first_line(exc)}") from exc
        kept = self._offset()
        again = (
            f"{kept} bytes are kept in {self.part}; run the same command again to resume"
            if kept
            else "nothing was received; run the same command again to retry"
        )
        raise DownloadError(
            f"download of {self.url} failed after {1 + RETRIES} attempts "
            f"({first_line(failure or Exception())}); {again}"
        )

    def _offset(self) -> int:
        try:
            return self.part.stat().st_size
        except FileNotFoundError:
            return 0

    def _saved_validator(self) -> tuple[bool, str | None]:
        """Whether the .part may be resumed, and the validator to send with If-Range."""
        try:
            saved = json.loads(self.meta.read_text())
        except FileNotFoundError:
            return True, None  # a .part from elsewhere: resume; the digest, if given, decides
        except (OSError, ValueError):
            return False, None
        if not isinstance(saved, dict) or saved.get("url") != self.url:
            return False, None
        validator = saved.get("validator")
        return True, validator if isinstance(validator, str) else None

    def _request(self) -> bool:
        """One GET from the current offset; False when the .part must be discarded first."""
        offset = self._offset()
        headers = {"Accept-Encoding": "identity"}  # byte ranges must address the stored bytes
        validator = None
        if offset:
            resumable, validator = self._saved_validator()
            if not resumable:
                return False
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator

        with self.client.stream("GET", self.url, headers=headers, follow_redirects=True) as resp:
            status = resp.status_code
            if offset and status == 416:
                return self._already_complete(resp, offset)
            if status >= 400:
                raise _status_error(self.url, resp)
            if offset and status == 206:
                start, total = _content_range(resp, offset)
                if start != offset or _validator_changed(validator, resp):
                    return False
            elif status == 200:
                if offset:
                    logger.info("%s ignored the range request; starting over", self.url)
                offset, total = 0, _content_length(resp)
                self._save_meta(resp)
            else:
                raise DownloadError(f"unexpected HTTP {status} from {self.url}")
            self._check_size(total)
            self.bar.update(self.task, completed=offset, total=total)
            size = self._write(resp, offset)
        if total is not None and size < total:
            raise _TruncatedError(f"received {size} of {total} bytes")
        return True

    def _already_complete(self, resp: httpx.Response, offset: int) -> bool:
        """416 to `bytes=N-`: the .part holds the whole file, unless the server's is shorter."""
        match = _UNSATISFIED_RANGE.fullmatch(resp.headers.get("content-range", "").strip())
        if match and int(match[1]) != offset:
            return False
        self.bar.update(self.task, completed=offset, total=offset)
        return True

    def _save_meta(self, resp: httpx.Response) -> None:
        record = {"url": self.url, "validator": _strong_validator(resp)}
        try:
            self.meta.write_text(json.dumps(record))
        except OSError as exc:
            raise DownloadError(f"cannot write {self.meta}: {first_line(exc)}") from exc

    def _check_size(self, size: int | None) -> None:
        if size is not None and size > self.max_bytes:
            _discard(self.part, self.meta)
            raise DownloadRejectedError(
                f"{self.url} is over the limit of {self.max_bytes} bytes (at least {size})"
            )

    def _write(self, resp: httpx.Response, offset: int) -> int:
        """Write the body at `offset` (0 truncates); returns the .part's size. Bytes received
        before a dropped link stay on disk for the next attempt."""
        size = offset
        try:
            with self.part.open("ab" if offset else "wb") as f:
                # NOTE: no chunk_size: httpx buffers up to it and drops the buffer when the link
                # fails, losing bytes that did arrive.
                for chunk in resp.iter_raw():
                    size += len(chunk)
                    if size > self.max_bytes:
                        break
                    f.write(chunk)
                    self.bar.advance(self.task, len(chunk))
        except OSError as exc:
            raise DownloadError(f"cannot write {self.part}: {first_line(exc)}") from exc
        self._check_size(size)
        return size


def _content_length(resp: httpx.Response) -> int | None:
    value = resp.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _content_range(resp: httpx.Response, offset: int) -> tuple[int, int | None]:
    """(first byte, whole file's size) of a 206; a missing header means the server's own."""
    match = _CONTENT_RANGE.fullmatch(resp.headers.get("content-range", "").strip())
    if match is None:
        length = _content_length(resp)
        return offset, None if length is None else offset + length
    start, last, total = match.groups()
    return int(start), int(last) + 1 if total == "*" else int(total)


def _validator_changed(sent: str | None, resp: httpx.Response) -> bool:
    """A 206 whose ETag differs from the one sent: the server ignored If-Range."""
    if sent is None or not sent.startswith('"'):
        return False
    etag = resp.headers.get("etag")
    return etag is not None and etag != sent


def _status_error(url: str, resp: httpx.Response) -> DownloadError:
    where = url if str(resp.url) == url else f"{url} (redirected to {resp.url})"
    message = f"{where} answered HTTP {resp.status_code} {resp.reason_phrase}".rstrip()
    if resp.status_code in _TRANSIENT_STATUSES:
        return DownloadError(f"{message}; try again later")
    return DownloadRejectedError(message)
