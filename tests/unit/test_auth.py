"""API keys and the door's policy: hashing, matching, revocation, permissions, rate limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from inferencehub.errors import ConfigError, OverloadedError, UnauthenticatedError
from inferencehub.gateway.auth import Authenticator, TokenBucket
from inferencehub.keys import KeyStore, match_key, parse_rate


def test_keys_are_shown_once_and_stored_hashed_and_private(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "data")
    secret = store.create("ci", rate_per_s=5.0, models=("resnet",))
    text = store.path.read_text()
    assert secret not in text
    assert secret.split("_")[-1] not in text
    assert os.stat(store.path).st_mode & 0o777 == 0o600
    (key,) = store.load()
    assert (key.name, key.rate_per_s, key.models) == ("ci", 5.0, ("resnet",))
    assert match_key({key.key_id: key}, secret) == key
    assert match_key({key.key_id: key}, secret[:-1] + "x") is None
    assert match_key({key.key_id: key}, "Bearer nonsense") is None


def test_names_are_unique_and_revocation_needs_a_known_name(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.create("a")
    with pytest.raises(ConfigError, match="exists"):
        store.create("a")
    with pytest.raises(ConfigError, match="no key named 'b'"):
        store.revoke("b")
    store.revoke("a")
    assert store.load() == []


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o660, 0o620, 0o666])
def test_a_keys_file_others_may_read_or_anyone_but_its_owner_write_is_refused(
    tmp_path: Path, mode: int
) -> None:
    store = KeyStore(tmp_path)
    store.create("a")
    store.path.chmod(mode)
    with pytest.raises(ConfigError, match=f"mode {mode:o}; chmod 600"):
        store.load()


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o640, 0o440])
def test_a_keys_file_its_group_may_read_is_trusted(tmp_path: Path, mode: int) -> None:
    """The kubelet mounts a Secret's files 0440 for the pod's fsGroup."""
    written = KeyStore(tmp_path)
    written.create("a")
    mounted = tmp_path / "secret" / "keys.json"
    mounted.parent.mkdir()
    mounted.write_bytes(written.path.read_bytes())
    mounted.chmod(mode)
    (key,) = KeyStore(tmp_path / "elsewhere", file=mounted).load()
    assert key.name == "a"


@pytest.mark.parametrize(("text", "per_s"), [("50/s", 50.0), ("120/min", 2.0), ("7", 7.0)])
def test_rates(text: str, per_s: float) -> None:
    assert parse_rate(text) == per_s


def test_bad_rate_is_named() -> None:
    with pytest.raises(ConfigError, match="50/s"):
        parse_rate("fast")


def test_token_bucket_allows_a_burst_then_paces() -> None:
    bucket = TokenBucket(rate=2.0, burst=2.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
    assert bucket.take(0.5) == 0.0  # one token refilled in half a second


def test_authenticator_is_open_without_keys_and_closed_with_them(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    auth = Authenticator(store)
    assert auth.authenticate(None) is None
    secret = store.create("svc", rate_per_s=1.0)
    auth = Authenticator(store)
    with pytest.raises(UnauthenticatedError, match="needs an API key"):
        auth.authenticate(None)
    with pytest.raises(UnauthenticatedError, match="not valid"):
        auth.authenticate("Bearer ih_000000000000_wrongwrongwrongwrongwrong")
    assert auth.authenticate(f"Bearer {secret}").name == "svc"
    with pytest.raises(OverloadedError, match="rate limit of 1 requests/s for API key 'svc'"):
        auth.authenticate(f"Bearer {secret}")
