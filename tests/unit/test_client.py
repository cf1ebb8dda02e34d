"""The SDK package: `connect()` picks the transport by scheme, and HTTP users never load grpc."""

from __future__ import annotations

import subprocess
import sys

import pytest

from inferencehub.client import HttpClient, connect


def test_http_urls_get_the_http_transport() -> None:
    for url in ("http://127.0.0.1:1", "https://hub.example:443"):
        with connect(url) as client:
            assert isinstance(client, HttpClient)


def test_grpc_urls_get_the_grpc_transport() -> None:
    from inferencehub.client.grpc import GrpcClient

    with connect("grpc://127.0.0.1:1", timeout_s=1) as client:  # the channel connects lazily
        assert isinstance(client, GrpcClient)


def test_other_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="use http://host:port or grpc://host:port"):
        connect("ftp://127.0.0.1:1")


def test_http_users_never_import_grpc() -> None:
    code = (
        "import sys; from inferencehub.client import connect;"
        "connect('http://127.0.0.1:1').close();"
        "assert 'grpc' not in sys.modules, 'grpc was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
