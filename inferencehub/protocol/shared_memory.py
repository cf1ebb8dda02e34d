"""Clients' system shared-memory regions (the KServe/Triton extension): keys, and safe access.

A client puts tensor bytes into a POSIX shm object, registers it under a name, and then names
the region (with an offset and a size) instead of sending the bytes. The gateway checks the
key and the spans (gateway/shared_memory.py); the worker opens the object itself and copies
the bytes in or out with pread/pwrite here.

Why copies and not a mapping: a client may truncate or replace its object at any time, and a
mapped page past the end of a truncated file raises SIGBUS, which would kill the worker and
every request on it. pread/pwrite on a file descriptor can only come up short, which is a clean
error for one request. The copy also keeps a client that rewrites its input mid-inference from
changing what the model sees. It costs one memcpy of the input (about 0.1 ms for a 600 KB
SqueezeNet image), against the network stack and two protobuf copies it replaces.

Stdlib only: the gateway and the worker both import this.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from dataclasses import dataclass
from typing import Final

from inferencehub.errors import InvalidRequestError
from inferencehub.v1 import inference_pb2 as pb

# A POSIX shm key: one optional leading slash, then one file name; no other slash, so it can
# never name a path outside the shm directory, and no "." or ".." alone.
_KEY: Final = re.compile(r"/?([A-Za-z0-9_][A-Za-z0-9_.\-]{0,254})")
# Region names travel in URLs and in metric-free listings only; keep them plain.
_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
SHM_DIR: Final = "/dev/shm"  # noqa: S108 - where Linux keeps POSIX shm objects


class RegionError(InvalidRequestError):
    """A region cannot be used as asked; the message says what to fix."""


@dataclass(frozen=True)
class RegionFile:
    """The shm object behind a key, as found when it was checked."""

    device: int
    inode: int
    size: int


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise RegionError(
            f"shared-memory region name {name[:64]!r} is not allowed; use 1-128 letters, digits, "
            "'_', '.' or '-'"
        )
    return name


def check_key(key: str) -> str:
    """The shm object's file name for a key ("/input" -> "input").

    Raises:
        RegionError: the key is not a plain POSIX shm key.
    """
    found = _KEY.fullmatch(key)
    if found is None:
        raise RegionError(
            f"shared-memory key {key[:64]!r} is not a POSIX shm key; expected '/name' with "
            "letters, digits, '_', '.' or '-' and no other '/'"
        )
    return found.group(1)


def _open(key: str, region: str) -> int:
    name = check_key(key)
    try:
        if sys.platform.startswith("linux"):
            # O_NOFOLLOW: a symlink planted in the shm directory is refused, never followed.
            return os.open(os.path.join(SHM_DIR, name), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        import _posixshmem

        return int(_posixshmem.shm_open("/" + name, os.O_RDWR, 0))
    except OSError as exc:
        raise RegionError(
            f"shared-memory region '{region}': key {key!r} cannot be opened "
            f"({exc.strerror or exc}); create it before registering or using it"
        ) from None


def inspect(key: str, region: str) -> RegionFile:
    """Check the object behind a key is one this server may use: a regular file of the
    server's own user (as tritonclient creates them, mode 0600).

    Raises:
        RegionError: it cannot be opened, or it is not such a file.
    """
    fd = _open(key, region)
    try:
        found = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(found.st_mode):
        raise RegionError(f"shared-memory region '{region}': key {key!r} is not a shm object")
    if found.st_uid != os.geteuid():
        raise RegionError(
            f"shared-memory region '{region}': key {key!r} belongs to another user; "
            "create it as the user the server runs as"
        )
    return RegionFile(found.st_dev, found.st_ino, found.st_size)


def _checked(span: pb.SharedMemorySpan, needed: int, what: str) -> int:
    """An open descriptor of the span's object, still the one registered and long enough."""
    fd = _open(span.key, span.region)
    try:
        found = os.fstat(fd)
        if (found.st_dev, found.st_ino) != (span.device, span.inode):
            raise RegionError(
                f"{what}: shared-memory region '{span.region}' was replaced since it was "
                f"registered (key {span.key!r} is another object now); register it again"
            )
        if found.st_size < span.offset + needed:
            raise RegionError(
                f"{what}: shared-memory region '{span.region}' holds {found.st_size} bytes "
                f"now, fewer than the {span.offset + needed} its span needs (was it truncated?)"
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_span(span: pb.SharedMemorySpan, what: str) -> bytearray:
    """The span's bytes, copied out of the client's object.

    Raises:
        RegionError: the object is gone, replaced, or shorter than the span.
    """
    data = bytearray(span.byte_size)
    fd = _checked(span, span.byte_size, what)
    try:
        view, done = memoryview(data), 0
        while done < span.byte_size:
            got = os.preadv(fd, [view[done:]], span.offset + done)
            if got <= 0:
                raise RegionError(
                    f"{what}: shared-memory region '{span.region}' ended after {done} of "
                    f"{span.byte_size} bytes (truncated while being read)"
                )
            done += got
    finally:
        os.close(fd)
    return data


def write_span(span: pb.SharedMemorySpan, data: memoryview, what: str) -> None:
    """Write an output's bytes at the span's start (the caller checked they fit its size).

    Raises:
        RegionError: the object is gone, replaced, or shorter than the span.
    """
    fd = _checked(span, len(data), what)
    try:
        done = 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], span.offset + done)
    finally:
        os.close(fd)
