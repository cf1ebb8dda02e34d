"""Write a signed bundle, and verify one while unpacking it in a single streaming pass.

The manifest and its signature come first, so a receiver checks who signed the bundle and how
big it is before a single model byte is written. Every later member must be a regular file the
manifest names, and is hashed as it streams to disk: a tar archive is not trusted for paths,
types or sizes, only the signed manifest is.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferencehub.bundles.manifest import (
    CHUNK,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    BundleError,
    FileEntry,
    Manifest,
    manifest_for,
    path_problem,
)
from inferencehub.bundles.signing import TrustedKeys, sign
from inferencehub.errors import first_line

__all__ = ["BundleError", "VerifiedBundle", "create_bundle", "open_bundle"]

MAX_MANIFEST_BYTES = 16 << 20
SIGNATURE_BYTES = 64
# Tar headers and padding the stream may carry besides file bytes: per member, and in all.
_HEADER_ALLOWANCE = 64 << 10
_SLACK = 1 << 20
_ALLOWED = {tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE}
_KINDS = {
    tarfile.SYMTYPE: "a symlink",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
    tarfile.CONTTYPE: "a contiguous file",
}


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose signature and every file hash checked out."""

    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes
    signer: str  # fingerprint of the trusted key that signed it
    root: Path | None  # DEST/MODEL, or None when only verified


def create_bundle(
    model_dir: Path, key: Ed25519PrivateKey, out: Path, versions: Sequence[str] | None = None
) -> Manifest:
    """Sign `model_dir`'s versions (all if None) into the bundle `out`, written atomically;
    gzip-compressed when `out` ends in `.gz` or `.tgz`.

    Raises:
        BundleError: the folder cannot be bundled, a file changed while being written, or
            `out` cannot be written.
    """
    manifest = manifest_for(model_dir, versions)
    manifest_bytes = manifest.to_bytes()
    signature = sign(key, manifest_bytes)
    stamp = _epoch(manifest.created)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise BundleError(f"cannot write {out}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as raw:
            if out.name.endswith((".gz", ".tgz")):
                with gzip.GzipFile(fileobj=raw, mode="wb", mtime=stamp) as packed:
                    _write_members(packed, model_dir, manifest, manifest_bytes, signature, stamp)
            else:
                _write_members(raw, model_dir, manifest, manifest_bytes, signature, stamp)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, out)
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise BundleError(f"cannot write {out}: {first_line(exc)}") from None
        raise
    return manifest


def open_bundle(
    path: Path, trusted: TrustedKeys, dest: Path | None, max_unpacked_bytes: int
) -> VerifiedBundle:
    """Verify a bundle and, with `dest`, unpack it into `dest/MODEL` (which must not exist).

    The signature and the manifest's total size are checked before anything is written.
    Files land only below `dest` (dirs 0700, files 0600). On error `dest` may hold part of the
    model: the caller owns `dest` and deletes it.

    Raises:
        BundleError: what failed, naming the member or file.
    """
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise BundleError(f"cannot read bundle {path}: {exc.strerror}") from None
    try:
        with raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            source: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            budget = _Budget(source, MAX_MANIFEST_BYTES + _SLACK)
            # Plain "r|": gzip is undone above, inside the budget, not by tarfile.
            with tarfile.open(fileobj=budget, mode="r|") as tar:  # type: ignore[arg-type]
                return _read(tar, budget, trusted, dest, max_unpacked_bytes)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise BundleError(f"truncated or corrupt archive: {first_line(exc)}") from None


class _Budget:
    """Counts the decompressed tar stream and stops it past `limit`: a small gzip file must
    not expand into gigabytes of tar headers, before the signature is checked or after."""

    def __init__(self, source: IO[bytes], limit: int) -> None:
        self.source, self.limit, self.used = source, limit, 0
        self.verified = False

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.used += len(data)
        if self.used > self.limit:
            if self.verified:
                raise BundleError("the archive holds far more data than its manifest lists")
            raise BundleError(
                f"the archive holds over {self.limit} bytes before its signature "
                "(the manifest must come first and be at most 16 MiB)"
            )
        return data


def _read(
    tar: tarfile.TarFile, budget: _Budget, trusted: TrustedKeys, dest: Path | None, limit: int
) -> VerifiedBundle:
    manifest_bytes = _first(tar, "first", MANIFEST_NAME, MAX_MANIFEST_BYTES)
    signature = _first(tar, "second", SIGNATURE_NAME, SIGNATURE_BYTES)
    if len(signature) != SIGNATURE_BYTES:
        raise BundleError(f"{SIGNATURE_NAME} is {len(signature)} bytes, not {SIGNATURE_BYTES}")
    signer = trusted.signer(manifest_bytes, signature)
    if signer is None:
        known = ", ".join(trusted.fingerprints()) or "none"
        raise BundleError(f"signature is not by a trusted key (signer unknown; trusted: {known})")
    manifest = Manifest.parse(manifest_bytes)
    if manifest.total_size > limit:
        raise BundleError(
            f"unpacked size would exceed the limit of {limit} bytes "
            f"(the manifest lists {manifest.total_size} bytes)"
        )
    budget.limit = budget.used + manifest.total_size + _SLACK
    budget.limit += _HEADER_ALLOWANCE * (len(manifest.files) + 1)
    budget.verified = True
    root = dest / manifest.model if dest is not None else None
    dest_fd = _open_dest(dest, manifest.model) if dest is not None else None
    try:
        _unpack(tar, manifest, dest_fd, limit)
    finally:
        if dest_fd is not None:
            os.close(dest_fd)
    return VerifiedBundle(manifest, manifest_bytes, signature, signer, root)


def _open_dest(dest: Path, model: str) -> int:
    """A descriptor of `dest` (created 0700 if missing) once DEST/MODEL is freshly made."""
    try:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise BundleError(f"cannot unpack into {dest}: {exc.strerror}") from None
    try:
        os.mkdir(model, 0o700, dir_fd=fd)
    except OSError as exc:
        os.close(fd)
        raise BundleError(f"cannot unpack into {dest / model}: {exc.strerror}") from None
    return fd


def _first(tar: tarfile.TarFile, position: str, name: str, max_size: int) -> bytes:
    """The next member, which must be the regular file `name` of at most `max_size` bytes."""
    member = tar.next()
    if member is None or member.name != name:
        found = "the end of the archive" if member is None else repr(member.name)
        raise BundleError(f"the {position} bundle member must be {name}, found {found}")
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE) or member.sparse is not None:
        raise BundleError(f"bundle member {name} is not a regular file")
    if member.size > max_size:
        raise BundleError(f"bundle member {name} is {member.size} bytes, over {max_size}")
    data = tar.extractfile(member)
    assert data is not None  # a regular file always has data
    return data.read()


def _unpack(tar: tarfile.TarFile, manifest: Manifest, dest_fd: int | None, limit: int) -> None:
    expected = {f.path: f for f in manifest.files}
    seen: set[str] = set()
    total = 0
    while (member := tar.next()) is not None:
        name = member.name
        problem = path_problem(name)
        if problem is not None:
            raise BundleError(f"bundle member {name!r} is not a safe path ({problem})")
        if member.type not in _ALLOWED or member.sparse is not None:
            kind = _KINDS.get(member.type, f"of tar type {member.type!r}")
            if member.sparse is not None:
                kind = "a sparse file"
            raise BundleError(
                f"bundle member {name!r} is {kind}; only regular files and directories are allowed"
            )
        if member.isdir():
            continue  # folders come from the file paths
        entry = expected.get(name)
        if entry is None:
            raise BundleError(f"{name} is in the archive but not in the manifest")
        if name in seen:
            raise BundleError(f"bundle member {name!r} appears twice")
        seen.add(name)
        if member.size != entry.size:
            raise BundleError(
                f"{name}: size mismatch (manifest {entry.size} bytes, archive {member.size})"
            )
        total += _copy_member(tar, member, entry, dest_fd, limit - total, limit)
    missing = sorted(expected.keys() - seen)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise BundleError(f"{missing[0]} is in the manifest but not in the archive{more}")


def _copy_member(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    entry: FileEntry,
    dest_fd: int | None,
    room: int,
    limit: int,
) -> int:
    """Stream one member to its file (or nowhere), hashing and counting; returns its bytes."""
    source = tar.extractfile(member)
    assert source is not None
    out = _create(dest_fd, entry.path) if dest_fd is not None else None
    digest = hashlib.sha256()
    count = 0
    try:
        while chunk := source.read(CHUNK):
            count += len(chunk)
            if count > entry.size:
                raise BundleError(f"{entry.path}: more bytes than the manifest's {entry.size}")
            if count > room:
                raise BundleError(f"unpacked size would exceed the limit of {limit} bytes")
            digest.update(chunk)
            if out is not None:
                _write(out, chunk, entry.path)
    finally:
        if out is not None:
            os.close(out)
    if count != entry.size:
        raise BundleError(f"{entry.path}: {count} bytes, the manifest says {entry.size}")
    actual = digest.hexdigest()
    if actual != entry.sha256:
        raise BundleError(
            f"{entry.path}: sha256 mismatch "
            f"(manifest {entry.sha256[:12]}..., file {actual[:12]}...)"
        )
    return count


def _create(dest_fd: int, path: str) -> int:
    """Open DEST/path for writing, making folders on the way, never following a symlink:
    names were checked, and O_NOFOLLOW/O_EXCL guard against anything placed meanwhile."""
    parts = path.split("/")
    folder = os.dup(dest_fd)
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o700, dir_fd=folder)
            except FileExistsError:
                pass
            inner = os.open(
                part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder
            )
            os.close(folder)
            folder = inner
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(parts[-1], flags, 0o600, dir_fd=folder)
    except FileExistsError:
        raise BundleError(f"cannot unpack {path}: it already exists in the destination") from None
    except OSError as exc:
        raise BundleError(f"cannot unpack {path}: {exc.strerror}") from None
    finally:
        os.close(folder)


def _write(fd: int, data: bytes, path: str) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError as exc:
        raise BundleError(f"cannot unpack {path}: {exc.strerror}") from None


def _write_members(
    stream: IO[bytes],
    model_dir: Path,
    manifest: Manifest,
    manifest_bytes: bytes,
    signature: bytes,
    stamp: int,
) -> None:
    """The manifest, its signature, then every file in manifest order."""
    with tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info(MANIFEST_NAME, len(manifest_bytes), stamp), io.BytesIO(manifest_bytes))
        tar.addfile(_info(SIGNATURE_NAME, len(signature), stamp), io.BytesIO(signature))
        for entry in sorted(manifest.files, key=lambda f: f.path):
            _add_file(tar, model_dir.parent / entry.path, entry)


def _add_file(tar: tarfile.TarFile, path: Path, entry: FileEntry) -> None:
    """Add one file, re-hashing it as it is copied: a file changed since it was hashed makes an
    error, never a bundle whose signed manifest lies."""
    changed = BundleError(f"{entry.path} changed while the bundle was written")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as source:
        status = os.fstat(fd)
        if status.st_size != entry.size:
            raise changed
        hashing = _Hashing(source)
        try:
            tar.addfile(_info(entry.path, entry.size, int(status.st_mtime)), hashing)
        except OSError:  # tarfile: "unexpected end of data" when the file shrank
            raise changed from None
        if source.read(1) or hashing.digest.hexdigest() != entry.sha256:
            raise changed


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, max(mtime, 0), 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class _Hashing:
    """A file wrapper that hashes what tarfile copies out of it."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source, self.digest = source, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.digest.update(data)
        return data


def _epoch(created: str) -> int:
    """The manifest's creation time as a tar and gzip mtime."""
    try:
        moment = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return 0
    return int(moment.timestamp())
