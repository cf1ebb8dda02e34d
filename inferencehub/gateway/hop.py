"""The gateway's end of the hop: predictions to one worker over a long-lived WorkerHop stream.

A unary gRPC call costs the gateway and the worker hundreds of microseconds of CPU in Python,
far more than a small model's compute, and copying image-sized tensors through two protobuf
stacks costs milliseconds. So each worker connection is one bidirectional stream (a session):
requests ready together leave in one message, answers ready together come back in one, and for
a worker on this machine the tensor bytes do not travel in the messages at all. They are
written once into a slot of the session's shared-memory arena (protocol/arena.py); the message
carries the slot, its generation and the spans of the tensors, and the worker writes outputs
back into the slot when the signature says how much room they need.

Who frees a slot: this client, when the worker's answer for it has been read, or when the
session dies (then the whole arena goes, and a new session gets a new one). A caller that gives
up (deadline, disconnect) does not free it: the worker may still be reading it. Small requests
travel inline (a slot costs more than copying a few KB), and so does everything to a remote
worker. A full arena is refused at once (RESOURCE_EXHAUSTED), never waited on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import grpc

from inferencehub.errors import HubError, OverloadedError, WorkerUnavailableError
from inferencehub.gateway import hop_session as hs
from inferencehub.gateway.admission import refusal
from inferencehub.gateway.hop_session import NO_HINTS, HopHints, Lane, Sending, Session
from inferencehub.protocol.status import error_from_status
from inferencehub.v1 import hop_pb2 as hop
from inferencehub.v1 import hop_pb2_grpc
from inferencehub.v1 import inference_pb2 as pb

logger = logging.getLogger(__name__)

# Requests ready together share a message up to this much inline data.
MESSAGE_SOFT_LIMIT = 4 << 20
# When requests come several at a time, the writer lets this many loop iterations pass before
# it composes a message: the requests being handled right then join it (MLP at c=64: 1.4 -> 3
# requests per message). A lone request does not wait.
GATHER_ITERATIONS = 8
# How long close() lets answers still on their way arrive.
CLOSE_GRACE_S = 5.0


class HopClient:
    """Sends predictions to one worker, many per message, over one stream at a time."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        name: str,
        arena_bytes: int,
        arena_dir: Path | None,
        wait_ready: Callable[[float], Awaitable[bool]] | None = None,
    ) -> None:
        """`arena_dir` (the private runtime dir) is where a local worker's arena may live;
        None for a remote worker: inline only. `wait_ready(timeout)` waits for a restarted
        worker; with it, requests in flight when the session broke are sent once more
        (inference is idempotent), within their deadlines."""
        self._stub = hop_pb2_grpc.WorkerHopStub(channel)
        self._name = name
        self._arena_bytes = arena_bytes if arena_dir is not None else 0
        self._arena_dir = arena_dir
        self._wait_ready = wait_ready
        self._session: Session | None = None
        self._opening = asyncio.Lock()
        self._lanes: dict[tuple[str, str], Lane] = {}
        self._wakeup = asyncio.Event()
        self._tags = itertools.count(1)
        self._closed = False
        self._retries: set[asyncio.Task[None]] = set()
        self.counts = hs.HopCounts()
        self._arena_warned = False

    # --- the caller's side ---------------------------------------------------------------
    async def predict(
        self,
        request: pb.PredictRequest,
        payloads: Sequence[bytes | memoryview],
        timeout_s: float,
        hints: HopHints = NO_HINTS,
    ) -> pb.PredictResponse:
        """Run a request on the worker and wait for its own answer, at most `timeout_s`.

        `payloads` are the inputs' bytes (the request's tensors carry none). Beyond the
        version's `hints.max_backlog` a request is refused at once.

        Raises:
            OverloadedError: the backlog or the arena is full.
            DeadlineExceededError: no answer within `timeout_s`.
            HubError: what the worker answered, or WorkerUnavailableError.
        """
        if self._closed:
            raise WorkerUnavailableError("the gateway is shutting down")
        key = (request.model_name, request.version)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = Lane()
        # The door (DataPlane.admit) judged the queue's length; here only the hard bound and
        # the deadline: PredictMany's items arrive together without passing the door one by one.
        refused = self.refusal(
            *key, hints.max_backlog, hints.instances, timeout_s, short_queue=False
        )
        if refused is not None:
            raise refused
        loop = asyncio.get_running_loop()
        item = Sending(
            request,
            payloads,
            hints.output_bytes,
            loop.create_future(),
            loop.time() + timeout_s,
            lane,
        )
        lane.instances = max(1, hints.instances)
        lane.backlog += 1  # before any await: concurrent callers see it
        try:
            session = await self._current_session()
            session.place(item)
        except BaseException as exc:
            self.counts.arena_refusals += isinstance(exc, OverloadedError)
            self._settle(item, None)
            raise
        if item.slot:
            self.counts.arena_requests += 1
        else:
            self.counts.inline_requests += 1
        lane.queue.append(item)
        if lane.may_send:
            self._wakeup.set()
        timer = loop.call_at(item.deadline, hs.expire, item, timeout_s)
        try:
            return await item.future
        finally:
            timer.cancel()
            if not item.done and not item.sent:  # expired or abandoned before it left
                self._settle(item, None)  # out of the backlog now, its slot freed

    def refusal(
        self,
        model: str,
        version: str,
        max_backlog: int,
        instances: int,
        timeout_s: float,
        *,
        short_queue: bool = True,
    ) -> OverloadedError | None:
        """Why a request for this version would be refused now (see admission.py), or None."""
        lane = self._lanes.get((model, version))
        if lane is None:
            return None
        what = f"model '{model}' version {version}"
        return refusal(
            what,
            lane.backlog,
            lane.pace,
            max_backlog,
            instances,
            timeout_s,
            short_queue=short_queue,
        )

    def occupancy(self) -> dict[str, int]:
        """The current session's arena and the stream's use, for /metrics and /v1/status."""
        return self.counts.with_session(self._session)

    async def close(self) -> None:
        """Refuse new requests, let answers on their way arrive (briefly), end the session."""
        self._closed = True
        for lane in self._lanes.values():
            while lane.queue:
                self._settle(
                    lane.queue.popleft(), WorkerUnavailableError("the gateway is shutting down")
                )
        session = self._session
        if session is not None:
            if session.waiting and not session.broken:
                session.idle.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_GRACE_S):
                        await session.idle.wait()
            self._break(session, WorkerUnavailableError("the gateway is shutting down"))
        for task in list(self._retries):
            task.cancel()
        await asyncio.gather(*self._retries, return_exceptions=True)

    # --- sessions ------------------------------------------------------------------------
    async def _current_session(self) -> Session:
        session = self._session
        if session is not None and not session.broken:
            return session
        async with self._opening:
            if self._session is None or self._session.broken:
                self._session = await self._open()
            return self._session

    async def _open(self) -> Session:
        """A new stream, with a new arena for a local worker.

        Raises:
            WorkerUnavailableError: the worker does not answer the hello in time.
        """
        call, arena, pid = await hs.greet(
            self._stub.Exchange(), self._name, self._arena_bytes, self._arena_dir, self._warn_inline
        )
        session = Session(call, arena, pid)
        session.tasks = [
            asyncio.create_task(self._write(session), name=f"hop-writer-{self._name}"),
            asyncio.create_task(self._read(session), name=f"hop-reader-{self._name}"),
        ]
        self.counts.sessions_opened += 1
        logger.debug(
            "hop session to %s (pid %d): %s",
            self._name,
            session.worker_pid,
            f"{arena.size >> 20} MiB arena" if arena is not None else "inline",
        )
        self._wakeup.set()  # requests queued while no session was up go into this one
        return session

    def _warn_inline(self, why: str) -> None:
        if not self._arena_warned:
            self._arena_warned = True
            logger.warning(
                "no shared-memory arena to %s (%s); tensors travel inline", self._name, why
            )

    async def _write(self, session: Session) -> None:
        """Send what the lanes may send; while a message is being written or a lane waits for
        answers, the next requests gather."""
        try:
            while True:
                await self._wakeup.wait()
                if hs.gathering_pays(session, self._lanes.values()):
                    for _ in range(GATHER_ITERATIONS):
                        await asyncio.sleep(0)
                self._wakeup.clear()
                while not session.broken:
                    message = self._next_message(session)
                    if message is None:
                        break
                    self.counts.messages_sent += 1
                    await session.call.write(message)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            self._break(session, hs.session_error(exc, self._name))
        except asyncio.CancelledError:
            if hs.cancelled_here():
                raise
            self._break(session, WorkerUnavailableError(f"the hop to {self._name} was cancelled"))

    def _next_message(self, session: Session) -> hop.HopRequests | None:
        message = hop.HopRequests()
        inline = 0
        now = asyncio.get_running_loop().time()
        for lane in self._lanes.values():
            if not lane.may_send:
                continue
            while lane.queue and (inline < MESSAGE_SOFT_LIMIT or not message.requests):
                item = lane.queue.popleft()
                if item.future.done():  # its caller gave up before it left: nobody read it
                    self._settle(item, None)
                    continue
                if item.session is not session:  # placed in a session that broke meanwhile
                    try:
                        session.place(item)
                    except OverloadedError as exc:
                        self._settle(item, exc)
                        continue
                inline += session.add(message, item, next(self._tags), now)
                item.sent = True
                lane.unanswered += 1
            if inline >= MESSAGE_SOFT_LIMIT:
                self._wakeup.set()  # the rest go in the next message
                break
        self.counts.requests_sent += len(message.requests)
        return message if message.requests else None

    async def _read(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        try:
            while (message := await session.call.read()) is not grpc.aio.EOF:
                for result in message.results:
                    item = session.waiting.pop(result.tag, None)
                    if item is None:
                        continue
                    item.lane.pace.answered(loop.time(), item.lane.backlog - 1)
                    outcome: pb.PredictResponse | HubError
                    if result.HasField("error"):
                        outcome = error_from_status(result.error.code, result.error.message)
                    else:
                        try:
                            outcome = session.response(item, result)
                        except HubError as exc:
                            outcome = exc
                    self._settle(item, outcome)  # frees its slot
                if not session.waiting:
                    session.idle.set()
            error: HubError = WorkerUnavailableError(f"{self._name} ended the hop stream")
        except grpc.aio.AioRpcError as exc:
            error = hs.session_error(exc, self._name)
        except asyncio.CancelledError:
            if hs.cancelled_here():
                raise
            error = WorkerUnavailableError(f"the hop stream to {self._name} was cancelled")
        self._break(session, error)

    def _break(self, session: Session, error: HubError) -> None:
        """The stream is gone, and its arena with it. Requests it held, and those queued for
        it, are sent once more when the worker is back (if allowed), or get `error`."""
        if session.broken:
            return
        session.close()
        if self._session is session:
            self._session = None
        sent = list(session.waiting.values())
        session.waiting.clear()
        for lane in self._lanes.values():
            lane.unanswered = 0  # nothing in flight any more
        for item in sent:
            item.sent = False
        if sent:
            logger.warning(
                "hop to %s broke with %d request(s) in flight: %s", self._name, len(sent), error
            )
        unsent = [item for lane in self._lanes.values() for item in lane.queue]
        for lane in self._lanes.values():
            lane.queue.clear()
        retry = [i for i in sent if not i.retried and not i.future.done()]
        retry += [i for i in unsent if not i.future.done()]
        can_retry = self._wait_ready is not None and not self._closed
        for item in sent + unsent:
            if not can_retry or item not in retry:
                self._settle(item, error)
        if can_retry and retry:
            task = asyncio.create_task(self._retry(retry, error))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)

    async def _retry(self, items: list[Sending], error: HubError) -> None:
        assert self._wait_ready is not None
        loop = asyncio.get_running_loop()
        back = await self._wait_ready(max(i.deadline for i in items) - loop.time())
        if back:
            try:
                await self._current_session()
            except HubError:
                back = False
        for item in reversed(items):
            if item.future.done() or not back or loop.time() >= item.deadline:
                self._settle(item, error)
                continue
            item.retried = item.retried or item.tag != 0  # sent before: this is its retry
            item.session = None  # placed in the new session when it leaves
            item.lane.queue.appendleft(item)
        if back:
            logger.info("retrying %d request(s) after %s came back", len(items), self._name)
            self._wakeup.set()

    def _settle(self, item: Sending, outcome: pb.PredictResponse | HubError | None) -> None:
        """The request is over for the worker: out of its lane; its caller gets `outcome`
        (None: nobody is waiting)."""
        if not item.done:
            item.done = True
            item.lane.backlog -= 1
        if item.sent:
            item.sent = False
            item.lane.unanswered -= 1
            if item.lane.may_send:
                self._wakeup.set()
        if item.session is not None and not item.session.broken:
            item.session.free(item)
        if outcome is None or item.future.done():
            return
        if not isinstance(outcome, HubError) and hs.past(item.deadline):
            outcome = hs.late()  # the timer had not fired yet: never an answer past it
        if isinstance(outcome, HubError):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)
