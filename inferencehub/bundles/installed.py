"""The signed manifest a repository keeps beside each imported version, so `require_signed`
can re-check the files on disk at every load, not only once at import: a file edited, added or
swapped after the import is caught before it is served."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from inferencehub.bundles.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    BundleError,
    FileEntry,
    Manifest,
    hash_file,
)
from inferencehub.bundles.signing import TrustedKeys

BUNDLE_DIR = ".bundle"  # models/NAME/VERSION/.bundle/{manifest.json,manifest.sig}


def keep_manifest(version_dir: Path, manifest_bytes: bytes, signature: bytes) -> None:
    """Store the exact signed manifest bytes and signature in `version_dir/.bundle/` (0644).

    Raises:
        OSError: the files cannot be written.
    """
    folder = version_dir / BUNDLE_DIR
    folder.mkdir(mode=0o755, exist_ok=True)
    for name, data in ((MANIFEST_NAME, manifest_bytes), (SIGNATURE_NAME, signature)):
        target = folder / name
        temporary = folder / f".{name}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o644)
            out.write(data)
        os.replace(temporary, target)


def check_installed(model_dir: Path, version: str, trusted: TrustedKeys) -> str | None:
    """None when `model_dir/version` and the model-level files are exactly what a trusted
    key signed; otherwise a one-line reason. Never raises on odd files."""
    try:
        return _check(model_dir, version, trusted)
    except OSError as exc:
        return f"cannot check {model_dir.name}/{version}: {exc.strerror or exc}"


def _check(model_dir: Path, version: str, trusted: TrustedKeys) -> str | None:
    kept = model_dir / version / BUNDLE_DIR
    data = _read_kept(kept / MANIFEST_NAME)
    if data is None:
        return (
            f"not signed: no {BUNDLE_DIR}/{MANIFEST_NAME} "
            "(it did not arrive through a verified bundle)"
        )
    signature = _read_kept(kept / SIGNATURE_NAME)
    if signature is None:
        return f"not signed: no {BUNDLE_DIR}/{SIGNATURE_NAME}"
    if trusted.signer(data, signature) is None:
        return "signature is not by a trusted key"
    try:
        manifest = Manifest.parse(data)
    except BundleError as exc:
        return f"the signed manifest is not valid: {exc.message}"
    if manifest.model != model_dir.name:
        return f"the signed manifest is for model {manifest.model!r}, not {model_dir.name!r}"
    if version not in manifest.versions:
        return f"the signed manifest does not include version {version}"
    expected = {f.path: f for f in manifest.version_files(version) + manifest.model_files()}
    found, odd = _on_disk(model_dir, version)
    if odd:
        return odd
    extra = sorted(found.keys() - expected.keys())
    if extra:
        return f"{extra[0]} is not in the signed manifest"
    missing = sorted(expected.keys() - found.keys())
    if missing:
        return f"{missing[0]} is missing (it is in the signed manifest)"
    for path in sorted(found):
        reason = _compare(found[path], expected[path])
        if reason:
            return reason
    return None


def _read_kept(path: Path) -> bytes | None:
    """A kept file's bytes (at most 16 MiB), None when it is missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return source.read(16 << 20)


def _on_disk(model_dir: Path, version: str) -> tuple[dict[str, Path], str | None]:
    """Files that would be served: everything in the version folder but `.bundle/`, and the
    non-hidden entries directly in the model folder (folders there are other versions)."""
    found: dict[str, Path] = {}
    model = model_dir.name
    pending = [(model_dir / version, f"{model}/{version}", True)]
    while pending:
        folder, prefix, top = pending.pop()
        with os.scandir(folder) as entries:
            listed = list(entries)
        for entry in listed:
            if top and entry.name == BUNDLE_DIR:
                continue
            name = f"{prefix}/{entry.name}"
            if entry.is_symlink():
                return found, f"{name} is a symlink (a signed version holds regular files only)"
            if entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), name, False))
            elif entry.is_file(follow_symlinks=False):
                found[name] = Path(entry.path)
            else:
                return found, f"{name} is not a regular file"
    with os.scandir(model_dir) as entries:
        listed = list(entries)
    for entry in listed:
        if entry.name.startswith(".") or entry.is_dir(follow_symlinks=False):
            continue
        name = f"{model}/{entry.name}"
        if entry.is_symlink():
            return found, f"{name} is a symlink (a signed model holds regular files only)"
        if not entry.is_file(follow_symlinks=False):
            return found, f"{name} is not a regular file"
        found[name] = Path(entry.path)
    return found, None


def _compare(path: Path, entry: FileEntry) -> str | None:
    """Why the file at `path` is not `entry`, or None."""
    try:
        if os.stat(path, follow_symlinks=False).st_size != entry.size:  # cheap, before hashing
            return f"{entry.path} changed since it was imported (size mismatch)"
        found = hash_file(path, entry.path)
    except OSError as exc:
        return f"cannot read {entry.path}: {exc.strerror}"
    except BundleError as exc:
        return exc.message
    if found != entry:
        return f"{entry.path} changed since it was imported (sha256 mismatch)"
    return None
