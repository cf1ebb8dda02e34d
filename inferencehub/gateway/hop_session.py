"""The gateway's side of one hop session: its arena slots, and a request's way through them.

`Session` holds one WorkerHop stream and, for a local worker, its shared-memory arena: it
places a request's inputs into a slot (or leaves them inline), frees the slot once the worker
answered for it, and reads the outputs back out of it. `Lane` and `Sending` are the
bookkeeping HopClient (hop.py) keeps per model version and per request.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from inferencehub.errors import (
    ConfigError,
    DeadlineExceededError,
    HubError,
    InternalError,
    OverloadedError,
    WorkerUnavailableError,
)
from inferencehub.gateway.admission import Pace
from inferencehub.protocol.arena import ALIGN, SharedArena, SlotAllocator, align
from inferencehub.protocol.status import error_from_rpc
from inferencehub.v1 import hop_pb2 as hop
from inferencehub.v1 import inference_pb2 as pb

# A request whose tensors (inputs and expected outputs) add up to less than this travels
# inline: measured with bench/hop.py, a slot costs more than copying that much through the
# messages (see bench/README.md).
INLINE_MAX_BYTES = 16 * 1024
HELLO_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class HopHints:
    """What the hop needs to know of a request's version (the gateway has its signature)."""

    max_backlog: int = 0  # max_queue_size: requests waiting here and in the worker; 0 = any
    instances: int = 1  # requests the version runs at once
    output_bytes: int = 0  # room its outputs need in the slot (0: unknown; they come inline)


NO_HINTS = HopHints()


class Lane:
    """One model version's requests, queued here or sent and unanswered.

    A lane sends while fewer of its requests are unanswered than the version has instances:
    an instance of the worker may then be idle. Otherwise requests gather and leave together
    when one is answered, since per message, not per request, is what the stream costs. Per
    version, so a slow model never holds a fast one back.
    """

    __slots__ = ("backlog", "instances", "pace", "queue", "unanswered")

    def __init__(self) -> None:
        self.queue: deque[Sending] = deque()
        self.unanswered = 0  # sent, not answered yet
        self.backlog = 0  # queued or unanswered: what max_queue_size bounds
        self.instances = 1
        self.pace = Pace()  # how fast the worker answers it lately: what admission weighs

    @property
    def may_send(self) -> bool:
        return bool(self.queue) and self.unanswered < self.instances


@dataclass(eq=False, slots=True)
class Sending:
    """One request from the gateway's call until its answer (or its session's end)."""

    request: pb.PredictRequest  # inputs' contents travel in `payloads`
    payloads: Sequence[bytes | memoryview]
    output_bytes: int
    future: asyncio.Future[pb.PredictResponse]
    deadline: float  # loop time
    lane: Lane
    tag: int = 0
    sent: bool = False  # in a message, not answered yet: counted in lane.unanswered
    session: Session | None = None
    slot: int = 0  # 0: inline
    generation: int = 0
    spans: list[tuple[int, int]] = field(default_factory=list)
    output_space: tuple[int, int] = (0, 0)
    inline_bytes: int = 0
    retried: bool = False
    done: bool = False  # answered or given up by its session: counted out of the backlog


class Session:
    """One stream, and the arena it shares with the worker (None: everything inline)."""

    def __init__(self, call: Any, arena: SharedArena | None, worker_pid: int) -> None:
        self.call = call
        self.arena = arena
        self.slots = SlotAllocator(ALIGN, arena.size) if arena is not None else None
        self.worker_pid = worker_pid
        self.generations = itertools.count(1)
        self.waiting: dict[int, Sending] = {}
        self.broken = False
        self.idle = asyncio.Event()  # set when nothing is in flight (close() waits for it)
        self.tasks: list[asyncio.Task[None]] = []

    def place(self, item: Sending) -> None:
        """Write the inputs into a slot, or leave them inline.

        Raises:
            OverloadedError: the arena is full right now.
        """
        item.session = self
        item.slot, item.spans, item.output_space = 0, [], (0, 0)
        sizes = [len(p) for p in item.payloads]
        data = sum(align(n) for n in sizes) + item.output_bytes
        if self.slots is None or sum(sizes) + item.output_bytes < INLINE_MAX_BYTES:
            item.inline_bytes = sum(sizes)
            return
        if data > self.slots.largest_possible():
            item.inline_bytes = sum(sizes)  # larger than the whole arena: the messages carry it
            return
        slot = self.slots.allocate(data)
        if slot is None:
            raise OverloadedError(
                f"the shared-memory arena to the worker is full ({self.slots.used >> 20} of "
                f"{self.slots.capacity >> 20} MiB in {self.slots.slots} requests); retry shortly"
            )
        assert self.arena is not None
        item.slot, item.generation = slot, next(self.generations)
        self.arena.open_slot(slot, item.generation, data)
        position = slot + ALIGN
        for payload, size in zip(item.payloads, sizes, strict=True):
            self.arena.write(position, payload)
            item.spans.append((position, size))
            position += align(size)
        item.output_space = (position, item.output_bytes)
        item.inline_bytes = 0

    def add(self, message: hop.HopRequests, item: Sending, tag: int, now: float) -> int:
        """Put a request into the message as `tag`, waiting for its answer; returns the bytes
        it carries inline."""
        item.tag = tag
        item.request.timeout_s = max(item.deadline - now, 0.001)  # what is left of it
        entry = message.requests.add(tag=item.tag, slot=item.slot, generation=item.generation)
        entry.request.CopyFrom(item.request)
        self.waiting[item.tag] = item
        if item.slot:
            for offset, length in item.spans:
                entry.inputs.add(offset=offset, length=length)
            entry.output_space.offset, entry.output_space.length = item.output_space
            return 0
        for tensor, payload in zip(entry.request.inputs, item.payloads, strict=True):
            tensor.contents = bytes(payload)
        return item.inline_bytes

    def free(self, item: Sending) -> None:
        if item.slot and item.session is self and self.slots is not None and not self.broken:
            assert self.arena is not None
            self.arena.close_slot(item.slot)
            self.slots.free(item.slot)
        item.slot = 0

    def response(self, item: Sending, result: hop.HopResult) -> pb.PredictResponse:
        """The answer, its outputs read out of the slot.

        Raises:
            InternalError: an output span lies outside the room this request was given.
        """
        response = result.response
        start, length = item.output_space
        for tensor, span in zip(response.outputs, result.outputs, strict=False):
            if not span.length:
                continue
            if self.arena is None or not (
                start <= span.offset and span.offset + span.length <= start + length
            ):
                raise InternalError("the worker wrote an output outside the request's slot")
            tensor.contents = self.arena.read(span.offset, span.length)
        return response

    def close(self) -> None:
        self.broken = True
        self.idle.set()
        for task in self.tasks:
            task.cancel()
        self.call.cancel()
        if self.arena is not None:
            self.arena.close()


def take_payloads(request: pb.PredictRequest) -> list[bytes]:
    """The inputs' bytes, taken out of the message: they travel to the worker beside it."""
    payloads = []
    for tensor in request.inputs:
        payloads.append(tensor.contents)
        tensor.ClearField("contents")
    return payloads


@dataclass
class HopCounts:
    """What one HopClient did, over all its sessions."""

    sessions_opened: int = 0
    messages_sent: int = 0
    requests_sent: int = 0
    arena_refusals: int = 0
    arena_requests: int = 0  # requests whose tensors crossed in the arena
    inline_requests: int = 0  # ... and inside the messages

    def with_session(self, session: Session | None) -> dict[str, int]:
        """These counts and the current session's arena use, for /metrics and /v1/status."""
        slots = session.slots if session is not None and not session.broken else None
        return {
            "arena_bytes": session.arena.size if slots is not None and session.arena else 0,
            "arena_used_bytes": slots.used if slots is not None else 0,
            "arena_slots": slots.slots if slots is not None else 0,
            "arena_high_water_bytes": slots.high_water if slots is not None else 0,
            "arena_refusals": self.arena_refusals,
            "arena_requests": self.arena_requests,
            "inline_requests": self.inline_requests,
            "in_flight": len(session.waiting) if session is not None else 0,
            "sessions_opened": self.sessions_opened,
            "messages_sent": self.messages_sent,
            "requests_sent": self.requests_sent,
        }


def gathering_pays(session: Session, lanes: Iterable[Lane]) -> bool:
    """Whether requests come several at a time (more than one queued, or answers still
    due): only then is gathering worth a wait. A lone request leaves at once."""
    if session.waiting:
        return True
    queued = 0
    for lane in lanes:
        queued += len(lane.queue)
        if queued > 1:
            return True
    return False


async def greet(
    call: Any, name: str, arena_bytes: int, arena_dir: Path | None, warn: Callable[[str], None]
) -> tuple[Any, SharedArena | None, int]:
    """Open a session on a new Exchange call: offer a fresh arena (a local worker), read the
    worker's hello. Returns the call, the arena the worker mapped (None: inline) and its pid.
    `warn` hears why a session goes without an arena.

    Raises:
        WorkerUnavailableError: the worker does not answer the hello in time.
    """
    arena = None
    if arena_bytes:
        assert arena_dir is not None
        try:
            arena = SharedArena.create(arena_bytes, arena_dir)
        except ConfigError as exc:
            warn(exc.message)
    hello = hop.HopHello()
    if arena is not None:
        hello.arena.CopyFrom(
            hop.ArenaOffer(path=arena.path, size=arena.size, arena_id=arena.arena_id)
        )
    try:
        async with asyncio.timeout(HELLO_TIMEOUT_S):
            await call.write(hop.HopRequests(hello=hello))
            reply = await call.read()
    except (grpc.aio.AioRpcError, TimeoutError, asyncio.InvalidStateError) as exc:
        call.cancel()
        if arena is not None:
            arena.close()
        if isinstance(exc, grpc.aio.AioRpcError):
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                raise WorkerUnavailableError(
                    f"{name} does not serve the WorkerHop stream (an older version?)"
                ) from None
            raise error_from_rpc(exc, name) from None
        raise WorkerUnavailableError(f"{name} did not answer the hop's hello") from None
    if reply is grpc.aio.EOF or not reply.HasField("hello"):
        call.cancel()
        if arena is not None:
            arena.close()
        raise WorkerUnavailableError(f"{name} ended the hop stream at once")
    if arena is not None and not reply.hello.arena_mapped:
        warn(reply.hello.error)
        arena.close()
        arena = None
    return call, arena, reply.hello.pid


def cancelled_here() -> bool:
    """Whether this task itself is being cancelled, not the gRPC call it awaited (a cancelled
    call raises CancelledError in its reader and writer too)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def expire(item: Sending, timeout_s: float) -> None:
    if not item.future.done():
        item.future.set_exception(late(timeout_s))


def late(timeout_s: float | None = None) -> DeadlineExceededError:
    what = f"{timeout_s:g}s " if timeout_s is not None else ""
    return DeadlineExceededError(f"no answer within the request's {what}deadline")


def past(deadline: float) -> bool:
    return asyncio.get_running_loop().time() >= deadline


def session_error(error: grpc.aio.AioRpcError | Exception, name: str) -> HubError:
    if isinstance(error, grpc.aio.AioRpcError):
        return error_from_rpc(error, name)
    return WorkerUnavailableError(f"{name}'s hop stream failed: {error}")
