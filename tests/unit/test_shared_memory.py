"""Clients' shared-memory regions: the gateway's registry rules and the worker's safe copies,
on real POSIX shm objects."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from inferencehub.errors import ErrorCode, OverloadedError
from inferencehub.gateway.shared_memory import (
    RegionExistsError,
    RegionNotFoundError,
    RegionRegistry,
)
from inferencehub.protocol.shared_memory import (
    SHM_DIR,
    RegionError,
    check_key,
    read_span,
    write_span,
)
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.client_memory import write_output

MakeObject = Callable[[int], str]


@pytest.fixture
def shm_object() -> Iterator[MakeObject]:
    """Creates shm objects of a given size (filled with 0, 1, 2, ...) and removes them."""
    made: list[Path] = []

    def make(size: int) -> str:
        name = f"ihtest-{os.getpid()}-{secrets.token_hex(4)}"
        path = Path(SHM_DIR) / name
        path.write_bytes(bytes(i % 251 for i in range(size)))
        path.chmod(0o600)
        made.append(path)
        return "/" + name

    yield make
    for path in made:
        path.unlink(missing_ok=True)


def registry(regions: int = 4, size: int = 1 << 20, inputs: int = 1 << 20) -> RegionRegistry:
    return RegionRegistry(max_regions=regions, max_bytes=size, max_input_bytes=inputs)


@pytest.mark.parametrize(
    "key", ["", "/", "/..", "/.", "..", "/a/b", "a/../b", "/../etc/passwd", "/x y", "/" + "a" * 300]
)
def test_only_plain_posix_keys_are_accepted(key: str) -> None:
    with pytest.raises(RegionError, match="not a POSIX shm key"):
        check_key(key)


def test_a_key_names_one_file_in_the_shm_directory() -> None:
    assert check_key("/input_simple") == "input_simple"
    assert check_key("output.0-a") == "output.0-a"


def test_a_symlink_in_the_shm_directory_is_not_followed(
    shm_object: MakeObject, tmp_path: Path
) -> None:
    target = tmp_path / "secret"
    target.write_bytes(b"x" * 64)
    link = Path(SHM_DIR) / f"ihtest-{os.getpid()}-link"
    link.symlink_to(target)
    try:
        with pytest.raises(RegionError, match="cannot be opened"):
            registry().register(None, "r", "/" + link.name, 0, 16)
    finally:
        link.unlink()


def test_registration_checks_the_object_and_the_sizes(shm_object: MakeObject) -> None:
    key = shm_object(64)
    regions = registry()
    with pytest.raises(RegionError, match="holds 64 bytes, fewer than offset 32 \\+ byte_size 40"):
        regions.register(None, "r", key, 32, 40)
    with pytest.raises(RegionError, match="cannot be opened"):
        regions.register(None, "r", "/ihtest-missing-object", 0, 16)
    with pytest.raises(RegionError, match="byte_size must be positive"):
        regions.register(None, "r", key, 0, 0)
    with pytest.raises(RegionError, match="region name"):
        regions.register(None, "a/b", key, 0, 16)
    region = regions.register(None, "r", key, 16, 48)
    assert (region.name, region.key, region.offset, region.byte_size) == ("r", key, 16, 48)
    with pytest.raises(RegionExistsError, match="already registered") as exists:
        regions.register(None, "r", key, 0, 8)
    assert exists.value.code == ErrorCode.FAILED_PRECONDITION


def test_an_object_of_another_user_is_refused(
    shm_object: MakeObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = shm_object(64)
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(SHM_DIR + key).st_uid + 1)
    with pytest.raises(RegionError, match="belongs to another user"):
        registry().register(None, "r", key, 0, 64)


def test_each_key_sees_and_uses_its_own_regions_only(shm_object: MakeObject) -> None:
    key = shm_object(64)
    regions = registry()
    regions.register("alice", "shared", key, 0, 64)
    regions.register("bob", "shared", key, 0, 32)  # the same name, without meeting
    regions.register("bob", "other", key, 32, 32)
    assert [r.byte_size for r in regions.status("alice")] == [64]
    assert [r.name for r in regions.status("bob")] == ["other", "shared"]
    assert regions.status(None) == []  # no key: not the keyed regions either
    with pytest.raises(RegionNotFoundError, match="'other' is not registered"):
        regions.span("alice", "other", 0, 8, "input 'x'")
    with pytest.raises(RegionNotFoundError):
        regions.status("alice", "other")
    regions.unregister("alice", "other")  # not alice's: nothing happens
    assert len(regions.status("bob")) == 2
    regions.unregister("bob")
    assert regions.status("bob") == [] and len(regions.status("alice")) == 1


def test_each_key_has_a_cap_on_regions_and_bytes(shm_object: MakeObject) -> None:
    key = shm_object(1000)
    regions = registry(regions=2, size=1500)
    regions.register("a", "one", key, 0, 1000)
    with pytest.raises(OverloadedError, match=r"would make 2000 bytes .*the cap is 1500"):
        regions.register("a", "two", key, 0, 1000)
    regions.register("a", "two", key, 0, 500)
    with pytest.raises(OverloadedError, match="already 2 shared-memory regions"):
        regions.register("a", "three", key, 0, 1)
    regions.register("b", "one", key, 0, 1000)  # another key: its own caps
    regions.unregister("a", "one")
    regions.register("a", "three", key, 0, 1)


def test_a_span_must_lie_inside_its_region(shm_object: MakeObject) -> None:
    key = shm_object(128)
    regions = registry()
    regions.register(None, "r", key, 64, 64)
    span = regions.span(None, "r", 16, 32, "input 'x'")
    assert (span.key, span.offset, span.byte_size, span.region_offset) == (key, 80, 32, 16)
    with pytest.raises(RegionError, match="offset 48 \\+ byte_size 32 runs past the 64 bytes"):
        regions.span(None, "r", 48, 32, "input 'x'")


def _span(regions: RegionRegistry, key: str, size: int) -> pb.SharedMemorySpan:
    regions.register(None, "r", key, 0, size)
    return regions.span(None, "r", 0, size, "input 'x'")


def test_reads_and_writes_copy_the_bytes(shm_object: MakeObject) -> None:
    key = shm_object(64)
    span = _span(registry(), key, 64)
    assert bytes(read_span(span, "input 'x'")) == bytes(range(64))
    write_span(span, memoryview(b"\xff" * 8), "output 'y'")
    assert (Path(SHM_DIR + key).read_bytes())[:9] == b"\xff" * 8 + b"\x08"


def test_a_truncated_region_fails_the_request_cleanly(shm_object: MakeObject) -> None:
    key = shm_object(4096)
    span = _span(registry(), key, 4096)
    os.truncate(SHM_DIR + key, 100)
    with pytest.raises(RegionError, match="holds 100 bytes now, fewer than the 4096"):
        read_span(span, "input 'x'")
    with pytest.raises(RegionError, match=r"output 'y'.*fewer than the 200"):
        write_span(span, memoryview(b"\0" * 200), "output 'y'")


def test_a_replaced_or_removed_object_is_refused(shm_object: MakeObject) -> None:
    key = shm_object(64)
    span = _span(registry(), key, 64)
    path = Path(SHM_DIR + key)
    path.unlink()
    with pytest.raises(RegionError, match="cannot be opened"):
        read_span(span, "input 'x'")
    path.write_bytes(b"\0" * 64)  # the same key, another object
    with pytest.raises(RegionError, match="was replaced since it was registered"):
        read_span(span, "input 'x'")


def test_an_output_larger_than_its_span_is_refused(shm_object: MakeObject) -> None:
    key = shm_object(16)
    span = _span(registry(), key, 16)
    tensor = pb.Tensor(name="y")
    with pytest.raises(RegionError, match=r"output 'y' needs 32 bytes; .* holds 16"):
        write_output(tensor, span, np.zeros(8, dtype=np.float32))
    write_output(tensor, span, np.arange(4, dtype=np.float32))
    assert tensor.shared_memory.byte_size == 16 and tensor.shared_memory.region == "r"
    assert np.frombuffer(Path(SHM_DIR + key).read_bytes(), np.float32).tolist() == [0, 1, 2, 3]


def test_a_request_is_resolved_from_the_callers_regions_only(shm_object: MakeObject) -> None:
    key = shm_object(256)
    regions = registry(inputs=200)
    regions.register("alice", "r", key, 0, 256)
    forged = pb.SharedMemorySpan(region="r", region_offset=8, byte_size=100, key="/etc", inode=7)
    request = pb.PredictRequest(inputs=[pb.Tensor(name="x", shared_memory=forged)])
    request.output_options["y"].shared_memory.CopyFrom(
        pb.SharedMemorySpan(region="r", region_offset=128, byte_size=64)
    )
    assert regions.resolve("alice", request) is True  # it uses regions: never mirrored
    assert regions.resolve("alice", pb.PredictRequest(inputs=[pb.Tensor(name="x")])) is False
    resolved = request.inputs[0].shared_memory
    assert (resolved.key, resolved.offset, resolved.byte_size) == (key, 8, 100)
    assert resolved.inode == os.stat(SHM_DIR + key).st_ino  # the client's own values are gone
    assert request.output_options["y"].shared_memory.offset == 128
    with pytest.raises(RegionNotFoundError):
        regions.resolve(
            "bob", pb.PredictRequest(inputs=[pb.Tensor(name="x", shared_memory=forged)])
        )
    thrice = pb.PredictRequest(
        inputs=[pb.Tensor(name=n, shared_memory=forged) for n in ("a", "b", "c")]
    )
    with pytest.raises(RegionError, match="add up to 300 bytes; the limit is 200"):
        regions.resolve("alice", thrice)
