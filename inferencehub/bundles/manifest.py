"""manifest.json of a bundle: which files, with which hashes, make up a model's versions.

The manifest is what the signature covers, so it carries everything the receiver checks:
every path, size and SHA-256. Parsing is strict (unknown or duplicate keys, NaN, unsafe paths
are refused) so that two readers can never disagree about what a signed manifest says.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inferencehub import __version__
from inferencehub.errors import InvalidRequestError

FORMAT = "inferencehub-bundle"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
MODEL_FILE = "model.onnx"
MAX_FILE_SIZE = 2**62
CHUNK = 1 << 20

# The same rule as worker/repository.py; repeated so bundles/ imports no role package.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_VERSION = re.compile(r"0|[1-9][0-9]{0,8}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEYS = {"format", "format_version", "model", "versions", "created", "hub_version", "files"}
_FILE_KEYS = {"path", "sha256", "size"}


class BundleError(InvalidRequestError):
    """A bundle, its manifest or a model folder to bundle is not acceptable; says exactly what."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of the bundle: `MODEL/<file>` or `MODEL/<VERSION>/...`."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """The signed description of a bundle (see docs/bundles.md for the rules)."""

    model: str
    versions: tuple[str, ...]
    files: tuple[FileEntry, ...]
    created: str
    hub_version: str

    def to_bytes(self) -> bytes:
        """Sorted keys, 2-space indent, trailing newline: stable bytes for the same content."""
        body = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "versions": list(self.versions),
            "created": self.created,
            "hub_version": self.hub_version,
            "files": [
                {"path": f.path, "sha256": f.sha256, "size": f.size}
                for f in sorted(self.files, key=lambda f: f.path)
            ],
        }
        text = json.dumps(body, sort_keys=True, indent=2, ensure_ascii=False)
        return (text + "\n").encode("utf-8")

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        """Read and check manifest bytes (only after their signature has been verified).

        Raises:
            BundleError: not JSON, or any rule of the format is broken.
        """
        try:
            body = json.loads(
                data.decode("utf-8"),
                object_pairs_hook=_unique_keys,
                parse_constant=_no_constant,
            )
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise BundleError(f"manifest is not UTF-8 JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BundleError("manifest is not a JSON object")
        _check_keys(body, _KEYS, "manifest")
        if body["format"] != FORMAT:
            raise BundleError(f"manifest format is {body['format']!r}, not {FORMAT!r}")
        if type(body["format_version"]) is not int or body["format_version"] != FORMAT_VERSION:
            raise BundleError(
                f"manifest format_version {body['format_version']!r} is not supported "
                f"(this hub reads {FORMAT_VERSION})"
            )
        model = body["model"]
        check_name(model)
        versions = body["versions"]
        if not isinstance(versions, list) or not versions:
            raise BundleError("manifest versions must be a non-empty list")
        for version in versions:
            check_version(version)
        if len(set(versions)) != len(versions):
            raise BundleError("manifest lists a version twice")
        created = _short_text(body, "created")
        hub_version = _short_text(body, "hub_version")
        if not isinstance(body["files"], list):
            raise BundleError("manifest files must be a list")
        files = tuple(_file_entry(item) for item in body["files"])
        manifest = cls(model, tuple(versions), files, created, hub_version)
        _check_files(manifest)
        return manifest

    def version_files(self, version: str) -> list[FileEntry]:
        """The files under `MODEL/VERSION/`."""
        prefix = f"{self.model}/{version}/"
        return [f for f in self.files if f.path.startswith(prefix)]

    def model_files(self) -> list[FileEntry]:
        """The model-level files (`MODEL/<file>`: model.toml, labels)."""
        return [f for f in self.files if f.path.count("/") == 1]

    @property
    def total_size(self) -> int:
        """Bytes the files take once unpacked."""
        return sum(f.size for f in self.files)


def check_name(name: object) -> None:
    """Raise BundleError unless `name` is a model name the repository accepts."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise BundleError(
            f"model name {name!r} is not valid: model names use letters, digits, '_', '.', '-' "
            "(1-128 characters, not starting with a punctuation mark)"
        )


def check_version(version: object) -> None:
    """Raise BundleError unless `version` is a canonical version folder name."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise BundleError(
            f"version {version!r} is not valid: versions are whole numbers like 1 or 12 "
            "(no leading zeros, at most 9 digits)"
        )


def path_problem(path: str) -> str | None:
    """Why `path` is not a safe relative bundle path, or None: the same rule for manifest
    paths and archive member names, so nothing can land outside the destination."""
    if not path:
        return "it is empty"
    if "\\" in path:
        return "it contains a backslash"
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "it contains a control character"
    if path.startswith("/"):
        return "it is absolute"
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return f"it has a {part!r} component" if part else "it has an empty component"
        if part.startswith("."):
            return f"it has a hidden component {part!r}"
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid UTF-8"
    return None


def manifest_for(model_dir: Path, versions: Sequence[str] | None) -> Manifest:
    """Hash a model folder's files: the chosen versions (all numbered ones if None) and the
    regular files directly in the folder; dotfiles and dot-folders are never bundled.

    Raises:
        BundleError: a bad name, a missing version or model.onnx, a symlink or special file.
    """
    model = model_dir.name
    check_name(model)
    if not model_dir.is_dir():
        raise BundleError(f"{model_dir} is not a model folder")
    entries = {e.name: e for e in _scan(model_dir) if not e.name.startswith(".")}
    for entry in entries.values():
        if entry.is_symlink():
            raise BundleError(f"{entry.path} is a symlink; bundles hold regular files only")
    numbered = [n for n, e in entries.items() if e.is_dir() and n.isascii() and n.isdigit()]
    if versions is None:
        chosen = sorted(numbered, key=int)
        if not chosen:
            raise BundleError(f"{model_dir} has no numbered version folders")
    else:
        for version in versions:
            check_version(version)
        chosen = sorted(set(versions), key=int)
        if not chosen:
            raise BundleError("no versions chosen")
    files: list[FileEntry] = []
    for version in chosen:
        check_version(version)
        if version not in numbered:
            raise BundleError(f"version {version} of {model} does not exist ({model_dir})")
        if not (model_dir / version / MODEL_FILE).is_file():
            raise BundleError(f"version {version} of {model} has no {MODEL_FILE}")
        files += _hash_tree(model_dir / version, f"{model}/{version}")
    for name, entry in sorted(entries.items()):
        if entry.is_file(follow_symlinks=False):
            files.append(hash_file(Path(entry.path), f"{model}/{name}"))
        elif not entry.is_dir(follow_symlinks=False):
            raise BundleError(f"{entry.path} is not a regular file; bundles hold regular files")
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = Manifest(model, tuple(chosen), tuple(files), created, __version__)
    return Manifest.parse(manifest.to_bytes())  # what we write must pass what we read


def hash_file(path: Path, name: str) -> FileEntry:
    """Hash one regular file (not following a symlink) as bundle path `name`."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BundleError(f"{path} is not a regular file; bundles hold regular files")
        digest = hashlib.sha256()
        size = 0
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry(name, digest.hexdigest(), size)


def _scan(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError as exc:
        raise BundleError(f"cannot list {directory}: {exc.strerror}") from None


def _hash_tree(directory: Path, prefix: str) -> list[FileEntry]:
    """Every non-hidden regular file below `directory`; a symlink or special file refuses."""
    found: list[FileEntry] = []
    for entry in sorted(_scan(directory), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        name = f"{prefix}/{entry.name}"
        if entry.is_symlink():
            raise BundleError(f"{entry.path} is a symlink; bundles hold regular files only")
        if entry.is_dir(follow_symlinks=False):
            found += _hash_tree(Path(entry.path), name)
        elif entry.is_file(follow_symlinks=False):
            found.append(hash_file(Path(entry.path), name))
        else:
            raise BundleError(f"{entry.path} is not a regular file; bundles hold regular files")
    return found


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse duplicate keys: JSON readers disagree on which one wins."""
    keys = [k for k, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f"duplicate key {key!r}")
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _check_keys(body: dict[str, Any], expected: set[str], where: str) -> None:
    missing = sorted(expected - body.keys())
    if missing:
        raise BundleError(f"{where} lacks {missing[0]!r}")
    unknown = sorted(body.keys() - expected)
    if unknown:
        raise BundleError(f"{where} has an unknown key {unknown[0]!r}")


def _short_text(body: dict[str, Any], key: str) -> str:
    value = body[key]
    if not isinstance(value, str) or not 0 < len(value) <= 64 or not value.isprintable():
        raise BundleError(f"manifest {key} must be a short printable string")
    return value


def _file_entry(item: object) -> FileEntry:
    if not isinstance(item, dict):
        raise BundleError("manifest files must be JSON objects")
    _check_keys(item, _FILE_KEYS, "manifest file entry")
    path, sha256, size = item["path"], item["sha256"], item["size"]
    if not isinstance(path, str):
        raise BundleError(f"manifest file path {path!r} is not a string")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise BundleError(f"manifest: {path}: sha256 must be 64 lowercase hex digits")
    if type(size) is not int or not 0 <= size <= MAX_FILE_SIZE:
        raise BundleError(f"manifest: {path}: size must be a whole number from 0 to 2**62")
    return FileEntry(path, sha256, size)


def _check_files(manifest: Manifest) -> None:
    """Paths safe, under the model, in a listed version; no duplicates; each version loadable."""
    paths = [f.path for f in manifest.files]
    if len(set(paths)) != len(paths):
        raise BundleError("manifest lists a file path twice")
    folders: set[str] = set()
    for path in paths:
        problem = path_problem(path)
        if problem:
            raise BundleError(f"manifest: file path {path!r} is not a safe path ({problem})")
        parts = path.split("/")
        if parts[0] != manifest.model or len(parts) < 2:
            raise BundleError(f"manifest: {path!r} is not under the model folder {manifest.model}/")
        if len(parts) > 2 and parts[1] not in manifest.versions:
            raise BundleError(f"manifest: {path!r} is not in a listed version")
        folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
    for path in paths:
        if path in folders:
            raise BundleError(f"manifest: {path!r} is both a file and a folder")
    for version in manifest.versions:
        if f"{manifest.model}/{version}/{MODEL_FILE}" not in paths:
            raise BundleError(f"manifest: version {version} has no {MODEL_FILE}")
