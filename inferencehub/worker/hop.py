"""The worker's end of the hop: one WorkerHop stream per gateway connection (see hop.proto).

Requests arrive in batches. Each is checked against its version's signature, decoded (inputs in
the session's arena become numpy views, not copies) and queued on the version's scheduler
without a coroutine of its own; its answer leaves from the future's callback, outputs written
into the request's slot when the gateway made room for them, and as many answers share a
message as are ready together. When the stream ends (the gateway stopped or died), the
session's requests still queued are cancelled and its arena is unmapped once nothing reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence

import grpc
import numpy as np

from inferencehub.errors import (
    ConfigError,
    ErrorCode,
    HubError,
    InternalError,
    WorkerUnavailableError,
)
from inferencehub.protocol.arena import SharedArena, align
from inferencehub.protocol.status import status_number
from inferencehub.protocol.tensors import wire_form
from inferencehub.v1 import hop_pb2 as hop
from inferencehub.v1 import hop_pb2_grpc
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.worker.client_memory import shaped_outputs
from inferencehub.worker.hop_session import HopSession
from inferencehub.worker.registry import ModelRegistry
from inferencehub.worker.scheduler import ModelScheduler, Prediction

logger = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0
# Failures that are the caller's doing or the load's (deadlines, full queues): DEBUG only, a
# bad client or an overload must not flood the log; statistics and /metrics count them.
QUIET_ERRORS = frozenset(
    {
        ErrorCode.INVALID_ARGUMENT,
        ErrorCode.NOT_FOUND,
        ErrorCode.FAILED_PRECONDITION,
        ErrorCode.DEADLINE_EXCEEDED,
        ErrorCode.RESOURCE_EXHAUSTED,
    }
)


class HopServicer(hop_pb2_grpc.WorkerHopServicer):
    """Serves WorkerHop.Exchange over the registry; trusts no caller (checks every handle)."""

    def __init__(
        self, registry: ModelRegistry, is_ready: Callable[[], bool], *, allow_arena: bool
    ) -> None:
        """`allow_arena`: only a worker on a private Unix socket maps what a peer offers; a
        worker listening on TCP would let a remote caller make it open local files."""
        self._registry = registry
        self._is_ready = is_ready
        self._allow_arena = allow_arena
        self._sessions: set[HopSession] = set()
        self._stopping = False

    async def drain(self, grace_s: float) -> None:
        """Stopping: refuse new requests, let held ones finish (within `grace_s`), then end
        every stream (a gateway's stream never ends by itself: it would hold the stop up)."""
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                for session in list(self._sessions):
                    await session.idle()
        for session in list(self._sessions):
            if session.handler is not None:
                session.handler.cancel()

    def counts(self) -> pb.HopStatistics:
        """What this worker holds for its gateways now (ModelStatistics carries it)."""
        sessions = self._sessions
        return pb.HopStatistics(
            sessions=sum(not s.closed for s in sessions),
            arenas_mapped=sum(s.arena is not None for s in sessions),
            requests_held=sum(len(s.held) for s in sessions),
            slots_held=sum(s.slots_held for s in sessions),
        )

    async def Exchange(
        self, request_iterator: AsyncIterator[hop.HopRequests], context: grpc.aio.ServicerContext
    ) -> None:
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                first = await context.read()
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "no hello within 10 s")
        if first is grpc.aio.EOF:
            return
        assert isinstance(first, hop.HopRequests)
        session, reply = self._open(first.hello, context)
        self._sessions.add(session)
        reader: asyncio.Task[None] | None = None
        try:
            await context.write(hop.HopResults(hello=reply))
            reader = asyncio.create_task(self._serve(session, context, first), name="hop")
            session.handler = reader
            # Ends when the gateway stops sending and all is answered, or when this worker
            # stops: then the call ends with a status (a cancelled handler would leave it open
            # for the whole grace period).
            await asyncio.wait([reader])
            if not reader.cancelled() and reader.exception() is not None:
                logger.debug("hop stream ended: %r", reader.exception())
        finally:
            if reader is not None:
                reader.cancel()
            session.close()  # counted until its last request lets go of the arena

    async def _serve(
        self, session: HopSession, context: grpc.aio.ServicerContext, first: hop.HopRequests
    ) -> None:
        message: hop.HopRequests | object = first
        while message is not grpc.aio.EOF:
            assert isinstance(message, hop.HopRequests)
            self._accept(session, message.requests)
            await session.flush()
            message = await context.read()
        await session.finish()

    def _open(
        self, hello: hop.HopHello, context: grpc.aio.ServicerContext
    ) -> tuple[HopSession, hop.HopHelloReply]:
        reply = hop.HopHelloReply(pid=os.getpid())
        arena = None
        if hello.HasField("arena"):
            offer = hello.arena
            if not self._allow_arena:
                reply.error = "this worker maps no arena (it listens on TCP)"
            else:
                try:
                    arena = SharedArena.attach(offer.path, offer.size, offer.arena_id)
                except ConfigError as exc:
                    reply.error = exc.message
                    logger.warning("cannot map the gateway's arena: %s", exc.message)
        reply.arena_mapped = arena is not None
        if arena is not None:
            logger.info("hop session with a %d MiB arena", arena.size >> 20)
        return HopSession(context, arena, self._sessions.discard), reply

    def _accept(self, session: HopSession, items: Sequence[hop.HopRequest]) -> None:
        """Start every request of a message. Versions whose runs are quick run right here,
        all of this message's requests in as few batches as fit: no task wakes up for them,
        and their answers leave with this message's flush."""
        started = []
        quick: dict[int, ModelScheduler] = {}
        for item in items:
            begun = self._start(session, item)
            if begun is not None:
                started.append(begun)
                if begun[1].quick:
                    quick[id(begun[1])] = begun[1]
        for scheduler in quick.values():
            scheduler.run_queued()
        for item, scheduler, arrived_ns, waiting in started:
            if waiting.done():  # answered by now: it leaves with this message's flush
                self._finish(session, item, scheduler, arrived_ns, waiting, kick=False)
            else:
                waiting.add_done_callback(
                    functools.partial(self._finish, session, item, scheduler, arrived_ns)
                )

    def _start(
        self, session: HopSession, item: hop.HopRequest
    ) -> tuple[hop.HopRequest, ModelScheduler, int, asyncio.Future[Prediction]] | None:
        arrived_ns = time.perf_counter_ns()
        request = item.request
        try:
            if not self._is_ready() or self._stopping:
                raise WorkerUnavailableError(
                    "the worker is stopping"
                    if self._stopping
                    else "the worker is still loading models; retry shortly"
                )
            scheduler = self._registry.get(request.model_name, request.version)
            payloads = session.payloads(item)
            scheduler.model.signature.check(request, [len(p) for p in payloads])
            timeout_s = request.timeout_s or None
            waiting: asyncio.Future[Prediction]
            if scheduler.model.decoding_is_heavy:  # images: decoded on the pool
                waiting = asyncio.ensure_future(
                    scheduler.submit(request, timeout_s, arrived_ns, payloads)
                )
            else:
                feeds = scheduler.model.decode_inputs(request, payloads)
                waiting = scheduler.enqueue(
                    feeds, list(request.outputs), timeout_s, arrived_ns, wake=not scheduler.quick
                )
        except Exception as exc:  # every request gets its own answer, whatever went wrong
            self._answer_error(session, item, exc)
            return None
        session.hold(item, waiting)
        return item, scheduler, arrived_ns, waiting

    def _finish(
        self,
        session: HopSession,
        item: hop.HopRequest,
        scheduler: ModelScheduler,
        arrived_ns: int,
        waiting: asyncio.Future[Prediction],
        *,
        kick: bool = True,
    ) -> None:
        try:
            if session.closed:
                return  # nobody to answer; cancelled or finished after the gateway left
            if waiting.cancelled():
                self._answer_error(session, item, WorkerUnavailableError("cancelled"))
                return
            error = waiting.exception()
            if error is not None:
                self._answer_error(session, item, error)
                return
            try:
                self._answer(session, item, scheduler, waiting.result())
            except Exception as exc:
                self._answer_error(session, item, exc)
                return
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "predict %s version %s: %.1f ms",
                    item.request.model_name,
                    scheduler.model.info.version,
                    (time.perf_counter_ns() - arrived_ns) / 1e6,
                    extra={"request_id": item.request.request_id},
                )
        finally:
            session.release(item)
            if kick:
                session.kick()

    def _answer(
        self,
        session: HopSession,
        item: hop.HopRequest,
        scheduler: ModelScheduler,
        prediction: Prediction,
    ) -> None:
        """Outputs go into the request's slot when the gateway made room, else inline."""
        arena = session.arena
        space = item.output_space
        position, end = space.offset, space.offset + space.length
        if item.slot and arena is not None and not arena.still_holds(item.slot, item.generation):
            raise InternalError("the request's arena slot moved on while it was computed")
        request = item.request
        outputs = shaped_outputs(scheduler.model, request, prediction.outputs)
        result = session.new_result(item.tag)
        response = result.response
        response.model_name = request.model_name
        response.version = scheduler.model.info.version
        response.request_id = request.request_id
        response.timing.CopyFrom(prediction.timing)
        response.classifications.extend(prediction.classifications)
        inline = 0
        for name, array in outputs:
            span = result.outputs.add()
            if isinstance(array, pb.Tensor):  # written into the client's region
                response.outputs.append(array)
                continue
            datatype, data = wire_form(array)
            tensor = response.outputs.add(name=name, datatype=datatype, shape=array.shape)
            if isinstance(data, np.ndarray):
                if arena is not None and data.nbytes and position + data.nbytes <= end:
                    arena.write_array(position, data)
                    span.offset, span.length = position, data.nbytes
                    position += align(data.nbytes)
                    continue
                data = data.tobytes()
            tensor.contents = data  # BYTES, no room left, or no arena: inline
            inline += len(data)
        session.count_inline(inline)

    def _answer_error(
        self, session: HopSession, item: hop.HopRequest, error: BaseException
    ) -> None:
        request = item.request
        if isinstance(error, HubError):
            code, message = error.code, error.message
            log = logger.debug if code in QUIET_ERRORS else logger.warning
            log(
                "predict %s version %s failed: %s",
                request.model_name,
                request.version,
                message,
                extra={"request_id": request.request_id},
            )
        else:
            logger.error(
                "predict %s version %s failed",
                request.model_name,
                request.version,
                exc_info=error,
                extra={"request_id": request.request_id},
            )
            code, message = ErrorCode.INTERNAL, "internal error; see the worker log"
        if not session.closed:
            result = session.new_result(item.tag)
            result.error.code = status_number(code)
            result.error.message = message
