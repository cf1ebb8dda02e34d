"""Models arriving from outside: a signed bundle, or a bare .onnx as a model's next version.

Everything happens in a private staging folder inside the repository (same filesystem, so the
last step is a rename): spool the upload, verify the signature and every hash while unpacking,
build each version through the same golden gate as a load, and only then rename the versions
into place and load them. Any failure before the rename leaves the repository untouched.
"""

from __future__ import annotations

import asyncio
import filecmp
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from inferencehub.bundles.archive import VerifiedBundle, open_bundle
from inferencehub.bundles.installed import keep_manifest
from inferencehub.bundles.manifest import check_name
from inferencehub.bundles.signing import TrustedKeys
from inferencehub.config import RepositorySettings
from inferencehub.errors import ConflictError, InvalidRequestError
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.registry import ModelRegistry
from inferencehub.worker.repository import MODEL_FILE, scan_model

logger = logging.getLogger(__name__)

STAGING_PREFIX = ".import-"  # dot folders are not models: the scanner and watcher skip them
UPLOAD_FILE = "upload"


@dataclass(frozen=True, slots=True)
class Staged:
    """A model folder in staging, ready to be renamed into the repository."""

    name: str
    folder: Path
    versions: list[str]
    signer: str


class ModelImporter:
    """Turns an upload into installed, loaded versions, or into a clear refusal."""

    def __init__(
        self,
        registry: ModelRegistry,
        root: Path,
        settings: RepositorySettings,
        trusted: TrustedKeys,
        on_installed: Callable[[str], None] = lambda name: None,
    ) -> None:
        """`on_installed(name)`: told once the files are in place and loaded, so that the
        repository watcher does not load them a second time."""
        self._registry = registry
        self._root = root
        self._settings = settings
        self._trusted = trusted
        self._on_installed = on_installed
        self._importing: set[str] = set()

    async def receive(self, chunks: AsyncIterator[pb.ImportChunk]) -> pb.ImportReply:
        """Import what the chunks carry.

        Raises:
            InvalidRequestError: not a valid bundle or model (BundleError says what failed).
            ConflictError: versions exist (without replace), or the model is being reloaded.
        """
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self._root))
        try:
            first = await self._spool(chunks, staging / UPLOAD_FILE)
            if first.onnx_model:
                staged = await asyncio.to_thread(self._stage_onnx, first.onnx_model, staging)
            else:
                bundle = await asyncio.to_thread(self._verify, staging)
                model = bundle.manifest.model
                unpacked = staging / "unpacked" / model
                staged = Staged(model, unpacked, list(bundle.manifest.versions), bundle.signer)
            return await self._install(staged, staging, first.replace)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)

    async def _spool(self, chunks: AsyncIterator[pb.ImportChunk], path: Path) -> pb.ImportChunk:
        """Write the upload to disk, within the size limit; the first chunk's options."""
        limit = self._settings.max_bundle_bytes
        first: pb.ImportChunk | None = None
        size = 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            async for chunk in chunks:
                if first is None:
                    first = chunk
                size += len(chunk.data)
                if size > limit:
                    raise InvalidRequestError(
                        f"the upload exceeds the limit of {limit} bytes "
                        "([repository] max_bundle_bytes)"
                    )
                file.write(chunk.data)
        if first is None or size == 0:
            raise InvalidRequestError("the upload is empty; expected a bundle or an .onnx file")
        return first

    def _verify(self, staging: Path) -> VerifiedBundle:
        """Check the signature and unpack with every hash checked (blocking)."""
        if not self._trusted.keys:
            raise InvalidRequestError(
                "this hub trusts no signing key, so it imports no bundle; start it with "
                "`up --trust PUB` or set [repository] trusted_keys"
            )
        unpacked = staging / "unpacked"
        unpacked.mkdir(mode=0o700)
        bundle = open_bundle(
            staging / UPLOAD_FILE, self._trusted, unpacked, self._settings.max_bundle_bytes
        )
        for version in bundle.manifest.versions:
            keep_manifest(
                unpacked / bundle.manifest.model / version, bundle.manifest_bytes, bundle.signature
            )
        return bundle

    def _stage_onnx(self, name: str, staging: Path) -> Staged:
        """A bare .onnx as the next version of `name`, beside copies of its model.toml."""
        if self._settings.require_signed:
            raise InvalidRequestError(
                "require_signed is on: only bundles signed by a trusted key are imported, and "
                "a bare .onnx file is not signed"
            )
        check_name(name)
        existing = scan_model(self._root / name)
        taken = [int(v.version) for v in existing.versions] if existing is not None else []
        version = str(max(taken, default=0) + 1)
        folder = staging / "unpacked" / name
        (folder / version).mkdir(parents=True, mode=0o700)
        os.replace(staging / UPLOAD_FILE, folder / version / MODEL_FILE)
        if existing is not None:
            for item in _model_files(existing.directory):
                shutil.copy2(item, folder / item.name)
        return Staged(name, folder, [version], "")

    async def _install(self, staged: Staged, staging: Path, replace: bool) -> pb.ImportReply:
        name = staged.name
        if name in self._importing or name in self._registry.reloading:
            raise ConflictError(
                f"model '{name}' is being imported or reloaded right now; try again when that "
                "is done"
            )
        self._importing.add(name)
        try:
            target = self._root / name
            model_files_change = _refuse_collisions(staged, target, replace)
            entry = scan_model(staged.folder)
            if entry is None or entry.error is not None:
                why = entry.error if entry is not None else "no numbered version folders"
                raise InvalidRequestError(f"model '{name}' cannot be read: {why}")
            refused = await self._registry.trial_load(entry, staged.versions)
            if refused:
                version, why = sorted(refused.items())[0]
                raise InvalidRequestError(
                    f"version {version} of '{name}' cannot serve, so nothing was installed: {why}"
                )
            await asyncio.to_thread(_move_into_place, staged, target, staging / "replaced")
            installed = scan_model(target)
            assert installed is not None  # its versions were just renamed into place
            await self._registry.reload(
                installed, None if model_files_change else set(staged.versions)
            )
            self._on_installed(name)
        finally:
            self._importing.discard(name)
        logger.info(
            "imported %s version(s) %s%s",
            name,
            ", ".join(staged.versions),
            f" signed by {staged.signer}" if staged.signer else " (bare .onnx)",
        )
        return pb.ImportReply(
            model=self._registry.model_info(name), versions=staged.versions, signer=staged.signer
        )


def _model_files(folder: Path) -> list[Path]:
    """model.toml, its labels and any other plain file directly in a model folder."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _refuse_collisions(staged: Staged, target: Path, replace: bool) -> bool:
    """Whether the import changes the model-level files; refuses what it may not change.

    Raises:
        ConflictError: a version exists, or model.toml / labels differ while versions the
            import leaves in place use them, and `replace` is off.
    """
    if not target.exists():
        return True
    found = scan_model(target)
    existing = found.versions if found is not None else []
    taken = sorted((v.version for v in existing if v.version in staged.versions), key=int)
    if taken and not replace:
        raise ConflictError(
            f"version(s) {', '.join(taken)} of '{staged.name}' already exist; import with "
            "--replace (replace=true) to replace them"
        )
    ours = {p.name: p for p in _model_files(staged.folder)}
    theirs = {p.name: p for p in _model_files(target)}
    changed = ours.keys() != theirs.keys() or any(
        not filecmp.cmp(ours[n], theirs[n], shallow=False) for n in ours
    )
    others = sorted((v.version for v in existing if v.version not in staged.versions), key=int)
    if changed and others and not replace:
        raise ConflictError(
            f"the bundle's model.toml or labels differ from those of '{staged.name}' that "
            f"version(s) {', '.join(others)} use; bundle those versions too, or import with "
            "--replace"
        )
    return changed


def _move_into_place(staged: Staged, target: Path, replaced: Path) -> None:
    """Renames only (same filesystem): a new model appears whole; an existing one gets each
    version folder in one step, and its model-level files replaced one by one."""
    if not target.exists():
        os.rename(staged.folder, target)
        return
    replaced.mkdir(mode=0o700)
    for version in staged.versions:
        if (target / version).exists():
            os.rename(target / version, replaced / version)
        os.rename(staged.folder / version, target / version)
    ours = {p.name: p for p in _model_files(staged.folder)}
    for name, path in ours.items():
        os.replace(path, target / name)
    for stale in _model_files(target):
        if stale.name not in ours:
            os.rename(stale, replaced / stale.name)
