"""The hop's shared-memory arena: tensor bytes cross from gateway to worker without a copy
through either gRPC stack.

One arena per hop session (one WorkerHop stream between a gateway and a local worker). The
gateway creates it, writes each request's inputs into a slot, and sends only the slot, its
generation and the spans of its tensors; the worker maps the same memory, hands ONNX Runtime
numpy views of the inputs and writes the outputs back into the slot.

Layout (little-endian; every offset a multiple of ALIGN, so numpy and ONNX Runtime get aligned
buffers):

    0      arena header, ALIGN bytes: MAGIC, arena_id (u64), size (u64)
    ALIGN  slots, each a header of ALIGN bytes (generation u64, capacity u64) then `capacity`
           bytes of data

The gateway is the only allocator (`SlotAllocator` lives in its memory: no lock crosses a
process). It writes a fresh generation into a slot's header when it hands the slot out and zero
when it takes it back, and takes it back only after the worker answered for it or the session
died. The worker checks the generation a request names before it reads the inputs and again
before it writes the outputs: a handle that does not match is refused, so a bug or a crash on
either side can fail a request but never show it another request's bytes.

Stdlib and numpy only: the gateway and the worker both import this.
"""

from __future__ import annotations

import bisect
import contextlib
import mmap
import os
import secrets
import struct
import tempfile
from pathlib import Path
from typing import Final

import numpy as np

from inferencehub.errors import ConfigError, InternalError

MAGIC: Final = b"IHARENA1"
ALIGN: Final = 64
_ARENA_HEADER = struct.Struct("<8sQQ")
_SLOT_HEADER = struct.Struct("<QQ")
# Below this, an arena is not worth having (one SqueezeNet input is 600 KB).
MIN_ARENA_BYTES: Final = 1 << 20


def align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


class SharedArena:
    """A mapped arena. `create` on the gateway side, `attach` on the worker side."""

    def __init__(self, memory: mmap.mmap, arena_id: int, path: str, owned_file: Path | None):
        self._memory = memory
        self.arena_id = arena_id
        self.size = len(memory)
        self.path = path
        self._owned_file = owned_file
        self._fd: int | None = None

    @classmethod
    def create(cls, size: int, directory: Path) -> SharedArena:
        """A fresh arena only this user may open: an anonymous memfd on Linux (never on disk,
        reached by the worker through /proc/<pid>/fd/N), else a 0600 file in `directory`
        (the private runtime dir), removed on close.

        Raises:
            ConfigError: `size` is below MIN_ARENA_BYTES, or the memory cannot be created.
        """
        if size < MIN_ARENA_BYTES:
            raise ConfigError(f"an arena needs at least {MIN_ARENA_BYTES} bytes, not {size}")
        owned_file: Path | None = None
        try:
            if hasattr(os, "memfd_create"):
                fd = os.memfd_create("inferencehub-arena", os.MFD_CLOEXEC)
                os.fchmod(fd, 0o600)
                path = f"/proc/{os.getpid()}/fd/{fd}"
            else:  # macOS and the BSDs: a private file; the runtime dir is 0700
                fd, name = tempfile.mkstemp(prefix="arena-", dir=directory)
                path, owned_file = name, Path(name)
            os.ftruncate(fd, size)
            memory = mmap.mmap(fd, size)
        except OSError as exc:
            raise ConfigError(f"cannot create a {size}-byte shared-memory arena: {exc}") from None
        arena_id = secrets.randbits(64) | 1
        _ARENA_HEADER.pack_into(memory, 0, MAGIC, arena_id, size)
        arena = cls(memory, arena_id, path, owned_file)
        arena._fd = fd  # the memfd must stay open for the worker to reach it through /proc
        return arena

    @classmethod
    def attach(cls, path: str, size: int, arena_id: int) -> SharedArena:
        """Map the arena a gateway offered, after checking it is the one it described.

        Raises:
            ConfigError: it cannot be opened or mapped, or its header does not match.
        """
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise ConfigError(f"cannot open the arena {path}: {exc.strerror}") from None
        try:
            if os.fstat(fd).st_size < size:
                raise ConfigError(f"the arena {path} is smaller than {size} bytes")
            memory = mmap.mmap(fd, size)
        except OSError as exc:
            raise ConfigError(f"cannot map the arena {path}: {exc}") from None
        finally:
            os.close(fd)  # the mapping keeps the memory
        magic, found_id, found_size = _ARENA_HEADER.unpack_from(memory, 0)
        if magic != MAGIC or found_id != arena_id or found_size != size:
            memory.close()
            raise ConfigError(f"{path} is not the arena offered (header mismatch)")
        return cls(memory, arena_id, path, None)

    def close(self) -> None:
        """Unmap (once no numpy view holds the memory any more) and release the file."""
        with contextlib.suppress(BufferError):  # views still out: the last one unmaps
            self._memory.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._owned_file is not None:
            self._owned_file.unlink(missing_ok=True)
            self._owned_file = None

    # --- the gateway's side --------------------------------------------------------------
    def open_slot(self, slot: int, generation: int, capacity: int) -> None:
        _SLOT_HEADER.pack_into(self._memory, slot, generation, capacity)

    def close_slot(self, slot: int) -> None:
        _SLOT_HEADER.pack_into(self._memory, slot, 0, 0)

    def write(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._memory[offset : offset + len(data)] = data

    def read(self, offset: int, length: int) -> bytes:
        return self._memory[offset : offset + length]

    # --- the worker's side ---------------------------------------------------------------
    def check_slot(self, slot: int, generation: int) -> tuple[int, int]:
        """The data range [start, end) of a slot whose header carries `generation`.

        Raises:
            InternalError: the slot lies outside the arena or has moved on (stale handle).
        """
        if slot % ALIGN or slot < ALIGN or slot + ALIGN > self.size:
            raise InternalError(f"arena slot {slot} is out of bounds")
        found, capacity = _SLOT_HEADER.unpack_from(self._memory, slot)
        start = slot + ALIGN
        if found != generation or generation == 0 or start + capacity > self.size:
            raise InternalError(
                f"arena slot {slot} holds generation {found}, not {generation}: stale handle"
            )
        return start, start + capacity

    def still_holds(self, slot: int, generation: int) -> bool:
        return _SLOT_HEADER.unpack_from(self._memory, slot)[0] == generation

    def buffer(self, offset: int, length: int) -> memoryview:
        """Arena bytes without a copy (numpy views them with np.frombuffer); while any such
        view lives, the mapping does too."""
        return memoryview(self._memory)[offset : offset + length]

    def write_array(self, offset: int, array: np.ndarray) -> None:
        """Copy a C-contiguous array's bytes into the arena."""
        self._memory[offset : offset + array.nbytes] = memoryview(array).cast("B")


class SlotAllocator:
    """First-fit over the arena's slot area, lowest address first, so the memory touched stays
    as small as the peak of what is in use at once. Pure bookkeeping in the gateway."""

    def __init__(self, start: int, end: int) -> None:
        self._free: list[tuple[int, int]] = [(start, end - start)]  # (offset, size), by offset
        self._sizes: dict[int, int] = {}
        self.capacity = end - start
        self.used = 0
        self.high_water = start  # the end of the highest slot ever handed out

    @property
    def slots(self) -> int:
        return len(self._sizes)

    def largest_possible(self) -> int:
        """Data bytes the biggest slot could hold if nothing else were in use."""
        return self.capacity - ALIGN

    def allocate(self, data_bytes: int) -> int | None:
        """The offset of a new slot holding `data_bytes` (header included), or None if full."""
        need = align(data_bytes) + ALIGN
        for index, (offset, size) in enumerate(self._free):
            if size >= need:
                if size == need:
                    del self._free[index]
                else:
                    self._free[index] = (offset + need, size - need)
                self._sizes[offset] = need
                self.used += need
                self.high_water = max(self.high_water, offset + need)
                return offset
        return None

    def free(self, slot: int) -> None:
        size = self._sizes.pop(slot)
        self.used -= size
        index = bisect.bisect_left(self._free, (slot, 0))
        if index < len(self._free) and slot + size == self._free[index][0]:
            size += self._free.pop(index)[1]
        if index > 0 and self._free[index - 1][0] + self._free[index - 1][1] == slot:
            previous = self._free[index - 1]
            self._free[index - 1] = (previous[0], previous[1] + size)
        else:
            self._free.insert(index, (slot, size))
