"""What both public gRPC services read from a call besides its message."""

from __future__ import annotations

import grpc

from inferencehub.gateway.dataplane import ROUTING_KEY


def routing_key(context: grpc.aio.ServicerContext) -> str:
    """The `x-routing-key` metadata that keeps a caller on one version of a split."""
    return str(dict(context.invocation_metadata() or ()).get(ROUTING_KEY, ""))[:256]
