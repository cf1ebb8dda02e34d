"""The importer over a real registry in this process: what lands in the repository, what is
refused, and that a refusal leaves the repository exactly as it was."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from inferencehub.bundles.archive import create_bundle
from inferencehub.bundles.signing import (
    TrustedKeys,
    generate_key_pair,
    load_private_key,
    load_trusted,
)
from inferencehub.config import RepositorySettings, WorkerSettings
from inferencehub.errors import ConflictError, InvalidRequestError, ModelNotReadyError
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.importer import ModelImporter
from inferencehub.worker.registry import ModelRegistry
from inferencehub.worker.repository import scan_model
from tests.model_builders import scale_model

pytestmark = pytest.mark.timeout(60)

READY = pb.ModelVersion.READY
FAILED = pb.ModelVersion.FAILED


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (dot folders too) with its bytes: 'nothing changed' made exact."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[tuple[Path, TrustedKeys]]:
    private, public = generate_key_pair(tmp_path / "keys")
    yield private, load_trusted([public])


def source_model(root: Path, name: str, factors: dict[str, list[float]], toml: str = "") -> Path:
    for version, values in factors.items():
        scale_model(root / name / version / "model.onnx", values)
    if toml:
        (root / name / "model.toml").write_text(toml)
    return root / name


def bundle_of(folder: Path, private: Path, out: Path, versions: list[str] | None = None) -> Path:
    create_bundle(folder, load_private_key(private), out, versions)
    return out


async def chunks(path: Path, **options: object) -> AsyncIterator[pb.ImportChunk]:
    data = path.read_bytes()
    first = pb.ImportChunk(**options)  # type: ignore[arg-type]
    for start in range(0, max(len(data), 1), 4096):
        first.data = data[start : start + 4096]
        yield first
        first = pb.ImportChunk()


class Box:
    """A repository served by a registry, with an importer in front of it."""

    def __init__(self, root: Path, trusted: TrustedKeys, require_signed: bool = False) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        settings = WorkerSettings(inference_threads=1, intra_op_threads=1)
        self.registry = ModelRegistry(
            root, settings, required_signers=trusted if require_signed else None
        )
        self.installed: list[str] = []
        self.importer = ModelImporter(
            self.registry,
            root,
            RepositorySettings(require_signed=require_signed, max_bundle_bytes=1 << 20),
            trusted,
            self.installed.append,
        )

    async def receive(self, path: Path, **options: object) -> pb.ImportReply:
        return await self.importer.receive(chunks(path, **options))

    def state(self, name: str) -> dict[str, int]:
        return {v.version: v.state for v in self.registry.model_info(name).versions}

    async def predict(self, name: str, version: str) -> np.ndarray:
        scheduler = self.registry.get(name, version)
        x = np.ones((1, 4), np.float32)
        loop = asyncio.get_running_loop()
        outputs = await loop.run_in_executor(None, scheduler.model.run_feeds, 0, {"x": x})
        return next(iter(outputs.values()))


@pytest.fixture
async def box(tmp_path: Path, keys: tuple[Path, TrustedKeys]) -> AsyncIterator[Box]:
    hub = Box(tmp_path / "repository", keys[1])
    scale_model(hub.root / "scale" / "1" / "model.onnx", [1, 1, 1, 1])
    await hub.registry.load_all()
    yield hub
    await hub.registry.close()


async def test_a_bundle_installs_loads_and_keeps_its_manifest(
    box: Box, keys: tuple[Path, TrustedKeys], tmp_path: Path
) -> None:
    folder = source_model(tmp_path / "src", "double", {"1": [2, 2, 2, 2], "2": [3, 3, 3, 3]})
    reply = await box.receive(bundle_of(folder, keys[0], tmp_path / "double.ihb"))
    assert list(reply.versions) == ["1", "2"] and reply.signer.startswith("SHA256:")
    assert box.state("double") == {"1": READY, "2": READY}
    assert (await box.predict("double", "2")).tolist() == [[3, 3, 3, 3]]
    assert (box.root / "double" / "2" / ".bundle" / "manifest.json").is_file()
    assert box.installed == ["double"]
    assert not [p for p in box.root.iterdir() if p.name.startswith(".import-")]


async def test_tampered_bundles_change_nothing(
    box: Box, keys: tuple[Path, TrustedKeys], tmp_path: Path
) -> None:
    folder = source_model(tmp_path / "src", "double", {"1": [2, 2, 2, 2]})
    bundle = bundle_of(folder, keys[0], tmp_path / "double.ihb")
    data = bytearray(bundle.read_bytes())
    model_bytes = (folder / "1" / "model.onnx").read_bytes()
    at = bytes(data).index(model_bytes) + len(model_bytes) - 5
    data[at] ^= 0xFF
    bundle.write_bytes(bytes(data))
    before = tree(box.root)
    with pytest.raises(InvalidRequestError, match="sha256"):
        await box.receive(bundle)
    assert tree(box.root) == before
    assert box.registry.list_models()[0].name == "scale" and len(box.registry.list_models()) == 1


async def test_an_untrusted_signer_is_refused(box: Box, tmp_path: Path) -> None:
    stranger, _ = generate_key_pair(tmp_path / "stranger")
    folder = source_model(tmp_path / "src", "double", {"1": [2, 2, 2, 2]})
    before = tree(box.root)
    with pytest.raises(InvalidRequestError, match="trusted"):
        await box.receive(bundle_of(folder, stranger, tmp_path / "double.ihb"))
    assert tree(box.root) == before


async def test_a_version_that_exists_needs_replace(
    box: Box, keys: tuple[Path, TrustedKeys], tmp_path: Path
) -> None:
    folder = source_model(tmp_path / "src", "scale", {"1": [5, 5, 5, 5]})
    bundle = bundle_of(folder, keys[0], tmp_path / "scale.ihb")
    before = tree(box.root)
    with pytest.raises(ConflictError, match="--replace"):
        await box.receive(bundle)
    assert tree(box.root) == before
    await box.receive(bundle, replace=True)
    assert (await box.predict("scale", "1")).tolist() == [[5, 5, 5, 5]]


async def test_other_versions_keep_their_model_toml_unless_replaced(
    box: Box, keys: tuple[Path, TrustedKeys], tmp_path: Path
) -> None:
    folder = source_model(tmp_path / "src", "scale", {"2": [2, 2, 2, 2]}, "max_queue_size = 7\n")
    bundle = bundle_of(folder, keys[0], tmp_path / "scale.ihb")
    with pytest.raises(ConflictError, match="version\\(s\\) 1 use"):
        await box.receive(bundle)
    assert not (box.root / "scale" / "2").exists()
    await box.receive(bundle, replace=True)
    assert (box.root / "scale" / "model.toml").read_text() == "max_queue_size = 7\n"
    assert box.state("scale") == {"1": READY, "2": READY}


async def test_a_version_that_fails_its_golden_gate_installs_nothing(
    box: Box, keys: tuple[Path, TrustedKeys], tmp_path: Path
) -> None:
    folder = source_model(tmp_path / "src", "double", {"1": [2, 2, 2, 2]})
    golden = folder / "1" / "golden"
    golden.mkdir()
    np.savez(
        golden / "ones.npz",
        **{"input.x": np.ones((1, 4), np.float32), "output.y": np.full((1, 4), 9, np.float32)},
    )
    before = tree(box.root)
    with pytest.raises(InvalidRequestError, match="cannot serve, so nothing was installed"):
        await box.receive(bundle_of(folder, keys[0], tmp_path / "double.ihb"))
    assert tree(box.root) == before


async def test_an_import_while_the_model_reloads_is_refused(
    box: Box, keys: tuple[Path, TrustedKeys], tmp_path: Path
) -> None:
    folder = source_model(tmp_path / "src", "scale", {"2": [2, 2, 2, 2]})
    bundle = bundle_of(folder, keys[0], tmp_path / "scale.ihb")
    box.registry.reloading.add("scale")  # what a (re)load of the model marks while it runs
    with pytest.raises(ConflictError, match="being imported or reloaded"):
        await box.receive(bundle)
    box.registry.reloading.discard("scale")
    await box.receive(bundle)
    assert box.state("scale") == {"1": READY, "2": READY}


async def test_a_bare_onnx_becomes_the_next_version(box: Box, tmp_path: Path) -> None:
    onnx_file = scale_model(tmp_path / "new.onnx", [4, 4, 4, 4])
    reply = await box.receive(onnx_file, onnx_model="scale")
    assert list(reply.versions) == ["2"] and reply.signer == ""
    assert (await box.predict("scale", "2")).tolist() == [[4, 4, 4, 4]]
    with pytest.raises(InvalidRequestError, match="model names"):
        await box.receive(onnx_file, onnx_model="../etc")


async def test_uploads_over_the_limit_and_empty_ones_are_refused(box: Box, tmp_path: Path) -> None:
    big = tmp_path / "big.onnx"
    big.write_bytes(os.urandom((1 << 20) + 1))
    with pytest.raises(InvalidRequestError, match="exceeds the limit of 1048576 bytes"):
        await box.receive(big, onnx_model="scale")
    empty = tmp_path / "empty.ihb"
    empty.write_bytes(b"")
    with pytest.raises(InvalidRequestError, match="empty"):
        await box.receive(empty)
    assert not [p for p in box.root.iterdir() if p.name.startswith(".import-")]


async def test_require_signed_serves_only_verified_versions(
    keys: tuple[Path, TrustedKeys], tmp_path: Path
) -> None:
    hub = Box(tmp_path / "repository", keys[1], require_signed=True)
    scale_model(hub.root / "scale" / "1" / "model.onnx", [1, 1, 1, 1])
    await hub.registry.load_all()
    try:
        failed = hub.registry.model_info("scale").versions[0]
        assert failed.state == FAILED and "not signed" in failed.error
        folder = source_model(tmp_path / "src", "double", {"1": [2, 2, 2, 2]})
        await hub.receive(bundle_of(folder, keys[0], tmp_path / "double.ihb"))
        assert hub.state("double") == {"1": READY}
        with pytest.raises(InvalidRequestError, match="require_signed"):
            await hub.receive(scale_model(tmp_path / "new.onnx", [4, 4, 4, 4]), onnx_model="x")
        # A file changed on disk afterwards: the next reload refuses it, old sessions included.
        scale_model(hub.root / "double" / "1" / "model.onnx", [7, 7, 7, 7])
        entry = scan_model(hub.root / "double")
        assert entry is not None
        await hub.registry.reload(entry, {"1"})
        version = hub.registry.model_info("double").versions[0]
        assert version.state == FAILED and "changed" in version.error
        with pytest.raises(ModelNotReadyError):
            hub.registry.get("double", "1")
    finally:
        await hub.registry.close()
