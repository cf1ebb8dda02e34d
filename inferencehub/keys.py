"""API keys: created once and shown once, stored only as salted hashes in a 0600 file.

Keys are 256-bit random secrets, so a salted SHA-256 is enough to keep the file useless to a
reader (no password-style stretching, which would cost every request milliseconds). A key names
its record (`ih_<id>_<secret>`), so checking one is a dictionary lookup and a constant-time
compare. Stdlib only: the CLI and the gateway both use it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from inferencehub.errors import ConfigError
from inferencehub.runtime import write_private_atomically

KEYS_FILE = "keys.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_KEY = re.compile(r"^ih_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})$")


@dataclass(frozen=True)
class ApiKey:
    """A stored key: never the secret itself."""

    name: str
    key_id: str
    salt: str
    digest: str
    created_at: float
    rate_per_s: float | None = None  # None: no per-key limit
    models: tuple[str, ...] | None = None  # None: every model

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def parse_rate(text: str) -> float:
    """'50/s', '3000/min' or '10' -> requests per second.

    Raises:
        ConfigError: not a positive rate.
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(?:/\s*(s|sec|m|min|h|hour))?\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"rate {text!r} must look like 50/s, 3000/min or 100000/h")
    per = {"s": 1, "sec": 1, None: 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}
    return float(match.group(1)) / per[match.group(2)]


class KeyStore:
    """The keys file of a data directory, or one named in the config (`gateway.api_keys_file`,
    e.g. mounted from a Kubernetes Secret)."""

    def __init__(self, data_dir: Path, file: Path | None = None) -> None:
        self.path = file if file is not None else data_dir / KEYS_FILE

    def load(self) -> list[ApiKey]:
        """Every stored key ([] when there is no file).

        The owner alone may write it and nobody else but the owner's group may read it: 0600,
        as `keys create` writes it, or 0440 / 0640, as the kubelet mounts a Secret for the
        pod's fsGroup. Anyone else who could write it could add a key.

        Raises:
            ConfigError: the file is not ours to trust or is corrupt.
        """
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return []
        if info.st_mode & 0o027:
            raise ConfigError(
                f"{self.path} must be writable by its owner only and unreadable by others "
                f"(mode {info.st_mode & 0o777:o}; chmod 600)"
            )
        try:
            records = json.loads(self.path.read_text())
            return [
                ApiKey(**{**r, "models": tuple(r["models"]) if r.get("models") else None})
                for r in records
            ]
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{self.path} is corrupt: {exc}") from None

    def _save(self, keys: list[ApiKey]) -> None:
        # A running gateway re-reads it: it must see the old file or the new one, whole.
        write_private_atomically(self.path, json.dumps([asdict(k) for k in keys], indent=1))

    def create(
        self, name: str, rate_per_s: float | None = None, models: tuple[str, ...] | None = None
    ) -> str:
        """Store a new key and return its secret form (shown once, never stored).

        Raises:
            ConfigError: bad or duplicate name.
        """
        if not _NAME.match(name):
            raise ConfigError(f"key name {name!r}: use letters, digits, '_', '.', '-'")
        keys = self.load()
        if any(k.name == name for k in keys):
            raise ConfigError(f"a key named {name!r} exists; revoke it first")
        key_id, secret, salt = (
            secrets.token_hex(6),
            secrets.token_urlsafe(32),
            secrets.token_hex(16),
        )
        keys.append(
            ApiKey(name, key_id, salt, _digest(salt, secret), time.time(), rate_per_s, models)
        )
        self._save(keys)
        return f"ih_{key_id}_{secret}"

    def revoke(self, name: str) -> None:
        """Raises ConfigError when there is no such key."""
        keys = self.load()
        remaining = [k for k in keys if k.name != name]
        if len(remaining) == len(keys):
            raise ConfigError(f"no key named {name!r}")
        self._save(remaining)


def match_key(keys: dict[str, ApiKey], presented: str) -> ApiKey | None:
    """The key record a presented secret belongs to, compared in constant time; else None."""
    found = _KEY.match(presented)
    if found is None:
        return None
    record = keys.get(found.group(1))
    if record is None:
        return None
    if hmac.compare_digest(record.digest, _digest(record.salt, found.group(2))):
        return record
    return None
