"""The gateway's registry of clients' system shared-memory regions.

Regions belong to the API key that registered them (or to everyone when keys are off): a
key sees, uses and unregisters its own regions only, and two keys may use the same region name
without meeting. Each key has a cap on regions and on registered bytes. Registering opens the
object once to check it (protocol/shared_memory.py); every use checks the span against the
registered size here and the worker checks it against the object's real size.

Nothing is mapped here: the gateway never touches the bytes, so unregistering a region while a
request uses it is safe (the request keeps the span it was given; the worker opens the object
by key and finds it, or answers a clean error if the client removed it).
"""

from __future__ import annotations

from dataclasses import dataclass

from inferencehub.errors import ErrorCode, HubError, ModelNotFoundError, OverloadedError
from inferencehub.protocol.shared_memory import RegionError, check_key, check_name, inspect
from inferencehub.v1 import inference_pb2 as pb

DEFAULT_MAX_REGIONS = 64
DEFAULT_MAX_REGION_BYTES = 16 << 30
DEFAULT_MAX_INPUT_BYTES = 64 << 20


class RegionNotFoundError(ModelNotFoundError):
    """No region of that name is registered for the caller."""


class RegionExistsError(HubError):
    """The caller already registered a region of that name."""

    code = ErrorCode.FAILED_PRECONDITION


@dataclass(frozen=True)
class Region:
    name: str
    key: str
    offset: int
    byte_size: int
    device: int
    inode: int


class RegionRegistry:
    def __init__(self, max_regions: int, max_bytes: int, max_input_bytes: int) -> None:
        """`max_input_bytes`: what one request's inputs in regions may add up to (the worker
        copies them into its memory; as `gateway.max_request_bytes` bounds a body)."""
        self._max_regions = max_regions
        self._max_bytes = max_bytes
        self._max_input_bytes = max_input_bytes
        self._regions: dict[str | None, dict[str, Region]] = {}

    def register(self, owner: str | None, name: str, key: str, offset: int, size: int) -> Region:
        """Raises RegionError (bad name, key, object or sizes), RegionExistsError or
        OverloadedError (the owner's cap)."""
        check_name(name)
        check_key(key)
        if size <= 0 or offset < 0:
            raise RegionError(
                f"shared-memory region '{name}': byte_size must be positive and offset "
                f"non-negative, got byte_size {size} and offset {offset}"
            )
        owned = self._regions.setdefault(owner, {})
        if name in owned:
            raise RegionExistsError(
                f"shared-memory region '{name}' is already registered; unregister it first"
            )
        if len(owned) >= self._max_regions:
            raise OverloadedError(
                f"already {len(owned)} shared-memory regions registered (the cap is "
                f"{self._max_regions}); unregister some first"
            )
        registered = sum(r.byte_size for r in owned.values())
        if registered + size > self._max_bytes:
            raise OverloadedError(
                f"registering {size} bytes more would make {registered + size} bytes of "
                f"shared memory (the cap is {self._max_bytes}); unregister some first"
            )
        found = inspect(key, name)
        if found.size < offset + size:
            raise RegionError(
                f"shared-memory region '{name}': key {key!r} holds {found.size} bytes, fewer "
                f"than offset {offset} + byte_size {size}"
            )
        region = owned[name] = Region(name, key, offset, size, found.device, found.inode)
        return region

    def status(self, owner: str | None, name: str = "") -> list[Region]:
        """The owner's regions by name, or the one named.

        Raises:
            RegionNotFoundError: `name` is not one of the owner's regions.
        """
        owned = self._regions.get(owner, {})
        if not name:
            return [owned[n] for n in sorted(owned)]
        return [self._find(owned, name)]

    def unregister(self, owner: str | None, name: str = "") -> None:
        """Forget one region, or all of the owner's; a name not registered is no error (as
        Triton: clients unregister everything before they start)."""
        if not name:
            self._regions.pop(owner, None)
        else:
            self._regions.get(owner, {}).pop(name, None)

    def resolve(self, owner: str | None, request: pb.PredictRequest) -> bool:
        """Turn each shared-memory reference of a request (region name, offset, size) into the
        span the worker reads or writes, from the owner's regions only: whatever else a client
        put into a span (key, device, inode) is overwritten here. Returns whether the request
        uses any region.

        Raises:
            RegionNotFoundError, RegionError: not the owner's region, or outside it.
            InvalidRequestError: the inputs in regions add up to more than max_input_bytes.
        """
        total, used = 0, False
        for tensor in request.inputs:
            if tensor.HasField("shared_memory"):
                ref, what = tensor.shared_memory, f"input '{tensor.name}'"
                ref.CopyFrom(self.span(owner, ref.region, ref.region_offset, ref.byte_size, what))
                total, used = total + ref.byte_size, True
        if total > self._max_input_bytes:
            raise RegionError(
                f"the request's inputs in shared memory add up to {total} bytes; the limit is "
                f"{self._max_input_bytes} (gateway.max_request_bytes)"
            )
        for name, options in request.output_options.items():
            if options.HasField("shared_memory"):
                ref, what = options.shared_memory, f"output '{name}'"
                ref.CopyFrom(self.span(owner, ref.region, ref.region_offset, ref.byte_size, what))
                used = True
        return used

    def span(
        self, owner: str | None, name: str, offset: int, size: int, what: str
    ) -> pb.SharedMemorySpan:
        """Where `what` (an input or output) lies: checked against the registered region.

        Raises:
            RegionNotFoundError, RegionError.
        """
        region = self._find(self._regions.get(owner, {}), name, what)
        if offset < 0 or size < 0 or offset + size > region.byte_size:
            raise RegionError(
                f"{what}: offset {offset} + byte_size {size} runs past the {region.byte_size} "
                f"bytes of shared-memory region '{name}'"
            )
        return pb.SharedMemorySpan(
            region=name,
            key=region.key,
            offset=region.offset + offset,
            byte_size=size,
            device=region.device,
            inode=region.inode,
            region_offset=offset,
        )

    @staticmethod
    def _find(owned: dict[str, Region], name: str, what: str = "") -> Region:
        region = owned.get(name)
        if region is None:
            prefix = f"{what}: " if what else ""
            raise RegionNotFoundError(
                f"{prefix}shared-memory region '{name[:128]}' is not registered"
                + (f"; registered: {', '.join(sorted(owned))}" if owned else "")
            )
        return region
