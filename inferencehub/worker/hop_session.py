"""One WorkerHop stream on the worker's side: its arena (if the gateway shared one), the
requests it holds, and its outbox of answers (see hop.py for the servicer that feeds it)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc

from inferencehub.errors import InternalError
from inferencehub.protocol.arena import SharedArena
from inferencehub.v1 import hop_pb2 as hop
from inferencehub.worker.client_memory import region_or_contents
from inferencehub.worker.scheduler import Prediction

# Answers ready together share a message up to this much inline data; a bigger message would
# only delay the first answers in it (gRPC's own limit is far higher).
MESSAGE_SOFT_LIMIT = 4 << 20


class HopSession:
    """One stream: its arena (if the gateway shared one), what it holds, its outbox."""

    def __init__(
        self,
        context: grpc.aio.ServicerContext,
        arena: SharedArena | None,
        forget: Callable[[HopSession], None],
    ) -> None:
        self._context = context
        self.arena = arena
        self._forget = forget  # called once the session is over and its arena let go of
        self.held: dict[int, asyncio.Future[Prediction]] = {}
        self.slots_held = 0
        self.closed = False
        self._outbox: list[hop.HopResults] = []
        self._outbox_bytes = 0
        self._writing = False
        self._drained = asyncio.Event()  # set after each write spell and each release
        self._flushes: set[asyncio.Task[None]] = set()
        self.handler: asyncio.Task[None] | None = None  # reads and answers its requests

    def payloads(self, item: hop.HopRequest) -> list[bytes | memoryview]:
        """Each input's bytes: views into the slot, or the tensor's own contents.

        Raises:
            InternalError: the handle is stale or points outside its slot.
        """
        inputs = item.request.inputs
        if not item.slot:
            return [region_or_contents(tensor) for tensor in inputs]
        if self.arena is None:
            raise InternalError("a request names an arena slot, but no arena is mapped")
        start, end = self.arena.check_slot(item.slot, item.generation)
        if len(item.inputs) != len(inputs):
            raise InternalError(f"{len(item.inputs)} spans for {len(inputs)} inputs")
        space = item.output_space
        if space.length and not start <= space.offset <= space.offset + space.length <= end:
            raise InternalError("the output space lies outside its slot")
        payloads: list[bytes | memoryview] = []
        for tensor, span in zip(inputs, item.inputs, strict=True):
            if not span.length:
                payloads.append(region_or_contents(tensor))
            elif start <= span.offset and span.offset + span.length <= end:
                payloads.append(self.arena.buffer(span.offset, span.length))
            else:
                raise InternalError(f"input '{tensor.name}' lies outside its slot")
        return payloads

    def hold(self, item: hop.HopRequest, waiting: asyncio.Future[Prediction]) -> None:
        self.held[item.tag] = waiting
        self.slots_held += bool(item.slot)

    def release(self, item: hop.HopRequest) -> None:
        if self.held.pop(item.tag, None) is not None:
            self.slots_held -= bool(item.slot)
        self._drained.set()
        if self.closed and not self.held:
            self._unmap()

    def new_result(self, tag: int) -> hop.HopResult:
        """An answer slot in the next message out; fill it in place (no copy)."""
        if not self._outbox or self._outbox_bytes >= MESSAGE_SOFT_LIMIT:
            self._outbox.append(hop.HopResults())
            self._outbox_bytes = 0
        return self._outbox[-1].results.add(tag=tag)

    def count_inline(self, nbytes: int) -> None:
        self._outbox_bytes += nbytes

    async def flush(self) -> None:
        """Write every answer that is ready. One writer at a time: a caller that finds a
        write under way leaves, and that writer takes its answers along."""
        if self._writing or self.closed:
            return
        self._writing = True
        try:
            while self._outbox and not self.closed:
                message = self._outbox.pop(0)
                if not self._outbox:
                    self._outbox_bytes = 0
                await self._context.write(message)
        finally:
            self._writing = False
            self._drained.set()

    def kick(self) -> None:
        """Answers became ready outside the reader (a run on the pool ended): write them."""
        if not self._writing and not self.closed:
            task = asyncio.get_running_loop().create_task(self.flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def idle(self) -> None:
        """Return once no request is held."""
        while self.held:
            self._drained.clear()
            await self._drained.wait()

    async def finish(self) -> None:
        """The gateway sent its last request: answer what is held, then end."""
        while self.held or self._outbox or self._writing:
            self._drained.clear()
            if self._outbox and not self._writing:
                await self.flush()
                continue
            await self._drained.wait()

    def close(self) -> None:
        """Nobody listens any more: cancel what is still queued (it is never computed)."""
        self.closed = True
        for task in self._flushes:
            task.cancel()
        for waiting in list(self.held.values()):
            waiting.cancel()
        if not self.held:
            self._unmap()

    def _unmap(self) -> None:
        if self.arena is not None:
            self.arena.close()  # a view an inference thread still reads keeps it mapped
            self.arena = None
        self._forget(self)
