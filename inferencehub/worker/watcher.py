"""Follow the model repository while serving: new versions load, changed ones reload, removed
ones drain. Polling (portable, no extra dependency) with a stability rule: a change is applied
only once two consecutive polls see the same files, so a model.onnx still being copied is never
loaded half-written. Copying into place with an atomic rename (`mv` within one filesystem) makes
a new file visible complete and is applied at the next stable poll.

It follows the saved routing policies too: workers that share a data dir (pods behind one
Service, with the data dir on a shared volume) adopt a policy another one saved. Those files are
written by rename, so they apply at the first poll that sees them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from inferencehub.bundles.installed import BUNDLE_DIR
from inferencehub.errors import HubError
from inferencehub.worker.golden import GOLDEN_DIR
from inferencehub.worker.registry import ModelRegistry
from inferencehub.worker.repository import MODEL_FILE, scan_model

logger = logging.getLogger(__name__)

FileStamp = tuple[int, int]  # (mtime_ns, size)
# A version: its model.onnx and its golden files (a changed golden file re-runs the gate).
VersionStamp = tuple[FileStamp | None, tuple[tuple[str, FileStamp], ...]]
ModelStamp = tuple[tuple[tuple[str, FileStamp], ...], dict[str, VersionStamp]]


def _stamp(path: Path) -> FileStamp | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def snapshot(root: Path) -> dict[str, ModelStamp]:
    """What the repository holds now: per model, its config files and its version files."""
    models: dict[str, ModelStamp] = {}
    try:
        directories = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    except OSError:
        return models
    for directory in directories:
        stamp = model_stamp(directory)
        if stamp is not None:
            models[directory.name] = stamp
    return models


def model_stamp(directory: Path) -> ModelStamp | None:
    """One model folder's config files and version files (None: not a model, or unreadable)."""
    try:
        children = list(directory.iterdir())
    except OSError:
        return None
    versions = {
        child.name: (_stamp(child / MODEL_FILE), _version_files(child))
        for child in children
        if child.is_dir() and child.name.isascii() and child.name.isdigit()
    }
    if not versions:
        return None
    return _files(directory, children), versions


def _version_files(version_dir: Path) -> tuple[tuple[str, FileStamp], ...]:
    """Golden files (a change re-runs the gate) and a kept bundle manifest (a change re-runs
    the require_signed check)."""
    kept = _files(version_dir / BUNDLE_DIR)
    return _files(version_dir / GOLDEN_DIR) + tuple((f"{BUNDLE_DIR}/{n}", s) for n, s in kept)


def _files(
    directory: Path, children: list[Path] | None = None
) -> tuple[tuple[str, FileStamp], ...]:
    """The plain files directly in `directory` with their stamps (none if it is missing)."""
    if children is None:
        try:
            children = list(directory.iterdir())
        except OSError:
            return ()
    return tuple(
        sorted(
            (child.name, stamp)
            for child in children
            if child.is_file() and (stamp := _stamp(child)) is not None
        )
    )


class RepositoryWatcher:
    """Applies stable repository changes to the registry."""

    def __init__(self, registry: ModelRegistry, root: Path, interval_s: float) -> None:
        self._registry = registry
        self._root = root
        self._interval_s = interval_s
        self._applied = snapshot(root)
        self._previous = self._applied
        self._routing = self._routing_files()

    def _routing_files(self) -> dict[str, tuple[int, int, int]]:
        """model name -> (inode, mtime, size) of its saved routing policy: each save renames a
        new file into place, so the inode changes even when the time and size do not."""
        directory = self._registry.routing_dir
        if directory is None:
            return {}
        try:
            paths = list(directory.glob("*.json"))
        except OSError:
            return {}
        stamps = {}
        for path in paths:
            with contextlib.suppress(OSError):
                info = path.stat()
                stamps[path.stem] = (info.st_ino, info.st_mtime_ns, info.st_size)
        return stamps

    def acknowledge(self, name: str) -> None:
        """The registry has just loaded `name` as it is on disk now (an import): not a change
        to load again at the next poll."""
        seen = model_stamp(self._root / name)
        if seen is not None:
            self._applied[name] = self._previous[name] = seen

    async def _follow_routing(self) -> None:
        current = await asyncio.to_thread(self._routing_files)
        for name in sorted(set(current) | set(self._routing)):
            if current.get(name) != self._routing.get(name):
                try:
                    await self._registry.follow_saved_routing(name)
                except (HubError, OSError) as exc:
                    logger.error("cannot follow the saved routing of %s: %s", name, exc)
        self._routing = current

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self._follow_routing()
            current = await asyncio.to_thread(snapshot, self._root)
            for name in sorted(set(current) | set(self._applied)):
                seen, before = current.get(name), self._previous.get(name)
                if seen != before or seen == self._applied.get(name):
                    continue  # still changing, or nothing to do
                try:
                    await self._apply(name, seen)
                except (HubError, OSError) as exc:
                    logger.error("cannot apply the change to %s: %s", name, exc)
                if seen is None:
                    self._applied.pop(name, None)
                else:
                    self._applied[name] = seen
            self._previous = current

    async def _apply(self, name: str, seen: ModelStamp | None) -> None:
        entry = scan_model(self._root / name) if seen is not None else None
        if entry is None:
            await self._registry.forget_model(name)
            return
        old = self._applied.get(name)
        if old is None or old[0] != seen[0]:
            changed = None  # new model, or model.toml / labels changed: reload every version
        else:
            changed = {v for v, stamp in seen[1].items() if old[1].get(v) != stamp}
        logger.info(
            "repository changed: reloading %s (%s)",
            name,
            "all versions" if changed is None else ", ".join(sorted(changed)) or "removal",
        )
        await self._registry.reload(entry, changed)
