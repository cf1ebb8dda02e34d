"""The hop's shared-memory arena: slot bookkeeping, handles that must match, private memory."""

from __future__ import annotations

import itertools
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferencehub.errors import ConfigError, InternalError
from inferencehub.protocol.arena import (
    ALIGN,
    MIN_ARENA_BYTES,
    SharedArena,
    SlotAllocator,
    align,
)


def test_slots_are_first_fit_from_the_lowest_address() -> None:
    slots = SlotAllocator(ALIGN, ALIGN + 10 * 1024)
    a, b, c = (slots.allocate(1000) for _ in range(3))
    assert (a, b, c) == (ALIGN, ALIGN + 1024 + ALIGN, ALIGN + 2 * (1024 + ALIGN))
    slots.free(b)
    assert slots.allocate(500) == b  # the hole is reused before fresh memory
    assert slots.high_water == c + 1024 + ALIGN  # nothing beyond the peak was touched


def test_freed_neighbours_merge_into_one_slot() -> None:
    slots = SlotAllocator(ALIGN, ALIGN + 4096)
    a, b = slots.allocate(1984), slots.allocate(1984)
    assert slots.allocate(1) is None  # full
    slots.free(a)
    slots.free(b)
    assert slots.allocate(4096 - ALIGN) == ALIGN  # one slot the size of everything again
    assert slots.used == 4096 and slots.slots == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 3000)), max_size=60))
def test_live_slots_never_overlap_and_all_memory_comes_back(ops: list[tuple[bool, int]]) -> None:
    slots = SlotAllocator(ALIGN, ALIGN + 32 * 1024)
    live: dict[int, int] = {}
    for allocate, size in ops:
        if allocate or not live:
            offset = slots.allocate(size)
            if offset is not None:
                live[offset] = offset + align(size) + ALIGN  # header + data, as handed out
        else:
            oldest = next(iter(live))
            slots.free(oldest)
            del live[oldest]
        ranges = sorted(live.items())
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(ranges))
        assert all(offset % ALIGN == 0 for offset in live)
    for offset in list(live):
        slots.free(offset)
    assert slots.used == 0 and slots.slots == 0
    assert slots.allocate(32 * 1024 - ALIGN) == ALIGN


def test_an_arena_is_private_memory_another_process_can_map() -> None:
    arena = SharedArena.create(MIN_ARENA_BYTES, Path("/nonexistent"))
    try:
        if hasattr(os, "memfd_create"):
            assert arena.path.startswith("/proc/")  # a memfd: never on disk
        assert stat.S_IMODE(os.stat(arena.path).st_mode) == 0o600
        worker = SharedArena.attach(arena.path, arena.size, arena.arena_id)
        arena.open_slot(ALIGN, 7, 128)
        arena.write(2 * ALIGN, b"tensor bytes")
        start, end = worker.check_slot(ALIGN, 7)
        assert (start, end) == (2 * ALIGN, 2 * ALIGN + 128)
        view = np.frombuffer(worker.buffer(start, 12), dtype=np.uint8)
        assert view.tobytes() == b"tensor bytes"  # the same memory, no copy
        worker.write_array(start + 64, np.arange(4, dtype=np.float32))
        assert np.frombuffer(arena.read(start + 64, 16), np.float32).tolist() == [0, 1, 2, 3]
        del view
        worker.close()
    finally:
        arena.close()


def test_a_handle_that_moved_on_is_refused() -> None:
    arena = SharedArena.create(MIN_ARENA_BYTES, Path("/nonexistent"))
    try:
        arena.open_slot(ALIGN, 3, 256)
        with pytest.raises(InternalError, match="generation 3, not 4: stale handle"):
            arena.check_slot(ALIGN, 4)
        arena.close_slot(ALIGN)  # taken back by the gateway
        with pytest.raises(InternalError, match="stale handle"):
            arena.check_slot(ALIGN, 3)
        with pytest.raises(InternalError, match="out of bounds"):
            arena.check_slot(arena.size, 1)
        with pytest.raises(InternalError, match="out of bounds"):
            arena.check_slot(ALIGN + 1, 1)
        arena.open_slot(2 * ALIGN, 5, arena.size)  # a capacity running past the end
        with pytest.raises(InternalError, match="stale handle"):
            arena.check_slot(2 * ALIGN, 5)
    finally:
        arena.close()


def test_the_wrong_file_is_not_mapped() -> None:
    arena = SharedArena.create(MIN_ARENA_BYTES, Path("/nonexistent"))
    try:
        with pytest.raises(ConfigError, match="header mismatch"):
            SharedArena.attach(arena.path, arena.size, arena.arena_id + 2)
        with pytest.raises(ConfigError, match="smaller than"):
            SharedArena.attach(arena.path, arena.size * 2, arena.arena_id)
        with pytest.raises(ConfigError, match="cannot open"):
            SharedArena.attach("/nonexistent/arena", arena.size, arena.arena_id)
    finally:
        arena.close()


def test_without_memfd_the_arena_is_a_private_file_removed_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "memfd_create", raising=False)
    arena = SharedArena.create(MIN_ARENA_BYTES, tmp_path)
    path = Path(arena.path)
    assert path.parent == tmp_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    SharedArena.attach(arena.path, arena.size, arena.arena_id).close()
    arena.close()
    assert not path.exists()


def test_an_arena_too_small_to_be_useful_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least"):
        SharedArena.create(4096, Path("/tmp"))
