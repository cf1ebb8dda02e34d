"""Ed25519 keys that sign bundle manifests: small keys, deterministic signatures, no options
to get wrong. Keys are plain PEM files, so `openssl` can make and read them too."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from inferencehub.errors import ConfigError

KEY_FILE = "bundle-signing.key"
PUBLIC_KEY_FILE = "bundle-signing.pub"


def generate_key_pair(directory: Path) -> tuple[Path, Path]:
    """Write a new key pair into `directory`: the private key 0600 from its first byte, the
    public key 0644. Returns (private path, public path).

    Raises:
        ConfigError: either file exists (a signing key is never overwritten), or I/O failed.
    """
    private_path, public_path = directory / KEY_FILE, directory / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise ConfigError(f"{path} already exists; refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {directory}: {exc.strerror}") from None
    _write_new(private_path, private_pem, 0o600)
    try:
        _write_new(public_path, public_pem, 0o644)
    except ConfigError:
        private_path.unlink(missing_ok=True)  # half a pair is worse than none
        raise
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an unencrypted PKCS#8 PEM Ed25519 private key.

    Raises:
        ConfigError: missing, unreadable, or not that kind of key.
    """
    data = _read(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: not an Ed25519 PEM private key (unencrypted PKCS#8)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a SubjectPublicKeyInfo PEM Ed25519 public key.

    Raises:
        ConfigError: missing, unreadable, or not that kind of key.
    """
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: not an Ed25519 PEM public key")
    return key


def fingerprint(key: Ed25519PublicKey) -> str:
    """`SHA256:` + unpadded base64 of SHA-256 over the raw 32-byte key: short enough to read
    out over the phone. (OpenSSH hashes its own key encoding, so the value differs from
    `ssh-keygen -l`.)"""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = hashlib.sha256(raw).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    """The raw 64-byte Ed25519 signature of `message`."""
    return key.sign(message)


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys whose signatures this hub accepts."""

    keys: tuple[Ed25519PublicKey, ...]

    def signer(self, message: bytes, signature: bytes) -> str | None:
        """The fingerprint of the first trusted key that verifies, else None."""
        for key in self.keys:
            try:
                key.verify(signature, message)
            except (InvalidSignature, ValueError):
                continue
            return fingerprint(key)
        return None

    def fingerprints(self) -> list[str]:
        """Fingerprints of every trusted key, in order (for messages)."""
        return [fingerprint(key) for key in self.keys]


def load_trusted(paths: Sequence[Path]) -> TrustedKeys:
    """Load public keys from PEM files; the same key twice counts once.

    Raises:
        ConfigError: a file is missing, unreadable or not an Ed25519 public key.
    """
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        key = load_public_key(Path(path))
        keys.setdefault(fingerprint(key), key)
    return TrustedKeys(tuple(keys.values()))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` exclusively with `mode` (never more open, not even for a moment)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; refusing to overwrite a signing key") from None
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)  # the umask may have taken bits we want (0644)
            out.write(data)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
