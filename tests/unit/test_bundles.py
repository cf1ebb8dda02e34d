"""Signed bundles: keys, manifest rules, create/verify/unpack, and the load-time re-check."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferencehub.bundles import archive
from inferencehub.bundles.archive import BundleError, create_bundle, open_bundle
from inferencehub.bundles.installed import BUNDLE_DIR, check_installed, keep_manifest
from inferencehub.bundles.manifest import Manifest, manifest_for
from inferencehub.bundles.signing import (
    TrustedKeys,
    fingerprint,
    generate_key_pair,
    load_private_key,
    load_public_key,
    load_trusted,
    sign,
)
from inferencehub.errors import ConfigError, InvalidRequestError
from tests.model_builders import scale_model

LIMIT = 1 << 30
SHA = "0" * 64
Member = tuple[tarfile.TarInfo, bytes | None]


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def trusted(key: Ed25519PrivateKey) -> TrustedKeys:
    return TrustedKeys((key.public_key(),))


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """models/resnet: versions 1 and 2, model.toml, labels, and hidden files never bundled."""
    root = tmp_path / "models" / "resnet"
    scale_model(root / "1" / "model.onnx", [1.0, 2.0])
    (root / "1" / "golden").mkdir()
    (root / "1" / "golden" / "a.npz").write_bytes(b"golden" * 100)
    (root / "1" / ".cache").mkdir()
    (root / "1" / ".cache" / "x").write_bytes(b"skip")
    (root / "2").mkdir()
    (root / "2" / "model.onnx").write_bytes(bytes(range(256)) * 400)  # content is only hashed
    (root / "model.toml").write_text('[postprocess]\nlabels = "labels.txt"\n')
    (root / "labels.txt").write_text("cat\ndog\n")
    (root / ".hidden").write_text("skip")
    return root


@pytest.fixture
def bundle(tmp_path: Path, model_dir: Path, key: Ed25519PrivateKey) -> Path:
    out = tmp_path / "resnet.ihb"
    create_bundle(model_dir, key, out)
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _outside(tmp_path: Path, dest: Path) -> set[str]:
    """Every path under tmp_path that is not under dest."""
    return {str(p) for p in tmp_path.rglob("*") if dest not in (p, *p.parents)}


def _refused(
    bundle: Path, trusted: TrustedKeys, tmp_path: Path, message: str, limit: int = LIMIT
) -> tuple[BundleError, Path]:
    """open_bundle fails saying `message`, and nothing appeared outside dest."""
    dest = tmp_path / "dest"
    before = _outside(tmp_path, dest)
    with pytest.raises(BundleError, match=re.escape(message)) as caught:
        open_bundle(bundle, trusted, dest, limit)
    assert _outside(tmp_path, dest) == before
    return caught.value, dest


def _tar(path: Path, members: list[Member]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _member(name: str, data: bytes | None = b"", kind: bytes = tarfile.REGTYPE) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, "/etc/passwd"
    return info, data


def _members(bundle: Path) -> list[Member]:
    with tarfile.open(bundle) as tar:
        return [(m, _data(tar, m)) for m in tar.getmembers()]


def _data(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | None:
    source = tar.extractfile(member)
    return source.read() if source is not None else None


def _signed(body: dict[str, object], key: Ed25519PrivateKey) -> list[Member]:
    data = json.dumps(body).encode()
    return [_member("manifest.json", data), _member("manifest.sig", sign(key, data))]


def _body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "format": "inferencehub-bundle",
        "format_version": 1,
        "model": "m",
        "versions": ["1"],
        "created": "2026-12-07T04:30:00Z",
        "hub_version": "0.1.0",
        "files": [
            {"path": "m/1/model.onnx", "sha256": hashlib.sha256(b"x").hexdigest(), "size": 1}
        ],
    }
    body.update(changes)
    return body


def _also(path: str) -> dict[str, object]:
    """Manifest changes: a second file at `path` beside m/1/model.onnx."""
    files = [{"path": p, "sha256": SHA, "size": 1} for p in ("m/1/model.onnx", path)]
    return {"files": files}


# --- round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet.ihb", "resnet.ihb.gz"])
def test_round_trip(
    tmp_path: Path, model_dir: Path, key: Ed25519PrivateKey, trusted: TrustedKeys, name: str
) -> None:
    out = tmp_path / name
    made = create_bundle(model_dir, key, out)
    assert out.stat().st_mode & 0o777 == 0o644 and issubclass(BundleError, InvalidRequestError)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    verified = open_bundle(out, trusted, tmp_path / "dest", LIMIT)
    assert verified.root == tmp_path / "dest" / "resnet"
    assert verified.signer == fingerprint(key.public_key())
    assert verified.manifest == made and verified.manifest_bytes == made.to_bytes()
    wanted = {k: v for k, v in _tree(model_dir).items() if not re.search(r"(^|/)\.", k)}
    assert _tree(verified.root) == wanted
    assert (verified.root / "2" / "model.onnx").stat().st_mode & 0o777 == 0o600
    assert made.versions == ("1", "2") and made.hub_version == "0.1.0"
    assert [f.path for f in made.files] == sorted(f"resnet/{k}" for k in wanted)
    assert [f.path for f in made.model_files()] == ["resnet/labels.txt", "resnet/model.toml"]
    assert len(made.version_files("1")) == 2
    assert made.total_size == sum(len(v) for v in wanted.values())


def test_member_order_and_ownership(bundle: Path) -> None:
    members = [m for m, _ in _members(bundle)]
    assert [m.name for m in members[:2]] == ["manifest.json", "manifest.sig"]
    assert all(m.isreg() and m.uid == 0 and m.uname == "" and m.mode == 0o644 for m in members)
    assert members[0].mtime > 0 and len(_members(bundle)[1][1]) == 64


def test_verify_only_writes_nothing(tmp_path: Path, bundle: Path, trusted: TrustedKeys) -> None:
    before = set(tmp_path.rglob("*"))
    verified = open_bundle(bundle, trusted, None, LIMIT)
    assert verified.root is None and verified.manifest.model == "resnet"
    assert set(tmp_path.rglob("*")) == before


def test_chosen_versions(tmp_path: Path, model_dir: Path, key: Ed25519PrivateKey) -> None:
    made = create_bundle(model_dir, key, tmp_path / "b.ihb", ["2"])
    assert made.versions == ("2",) and not made.version_files("1")
    with pytest.raises(BundleError, match="version 3 of resnet does not exist"):
        manifest_for(model_dir, ["3"])
    with pytest.raises(BundleError, match="versions are whole numbers"):
        manifest_for(model_dir, ["01"])
    (model_dir / "3").mkdir()
    with pytest.raises(BundleError, match=r"version 3 of resnet has no model\.onnx"):
        manifest_for(model_dir, ["3"])


def test_symlink_in_model_folder_is_refused(model_dir: Path) -> None:
    (model_dir / "1" / "link").symlink_to(model_dir / "labels.txt")
    with pytest.raises(BundleError, match="link is a symlink"):
        manifest_for(model_dir, None)


def test_file_changed_while_writing(
    tmp_path: Path, model_dir: Path, key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    def then_edit(folder: Path, versions: Sequence[str] | None) -> Manifest:
        made = manifest_for(folder, versions)
        (folder / "labels.txt").write_text("cat\nfox\n")  # same size, other bytes
        return made

    monkeypatch.setattr(archive, "manifest_for", then_edit)
    with pytest.raises(BundleError, match=r"labels\.txt changed while the bundle was written"):
        create_bundle(model_dir, key, tmp_path / "b.ihb")
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".ihb", ".tmp")]


# --- refusals -----------------------------------------------------------------------------


def test_truncated(tmp_path: Path, bundle: Path, trusted: TrustedKeys) -> None:
    data = bundle.read_bytes()
    cut = data.index(bytes(range(256)) * 4) + 5000  # inside version 2's model.onnx
    bundle.write_bytes(data[:cut])
    _refused(bundle, trusted, tmp_path, "truncated or corrupt archive")


@pytest.mark.parametrize("garbage", [b"not a tar archive" * 100, b"\x1f\x8b" + b"\x07" * 900])
def test_corrupt(tmp_path: Path, trusted: TrustedKeys, garbage: bytes) -> None:
    path = tmp_path / "bad.ihb"
    path.write_bytes(garbage)
    _, dest = _refused(path, trusted, tmp_path, "truncated or corrupt archive")
    assert not dest.exists()


def test_untrusted_signer(tmp_path: Path, bundle: Path) -> None:
    other = TrustedKeys((Ed25519PrivateKey.generate().public_key(),))
    message = f"not by a trusted key (signer unknown; trusted: {other.fingerprints()[0]})"
    _, dest = _refused(bundle, other, tmp_path, message)
    assert not dest.exists()


def _insert(name: str, kind: bytes = tarfile.REGTYPE) -> Callable[[list[Member]], list[Member]]:
    member = _member(name, b"x" if kind == tarfile.REGTYPE else None, kind)
    return lambda members: [*members[:3], member, *members[3:]]


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            lambda m: [*m, _member("resnet/1/extra.bin", b"x")],
            "resnet/1/extra.bin is in the archive but not in the manifest",
        ),
        (
            lambda m: [x for x in m if x[0].name != "resnet/model.toml"],
            "resnet/model.toml is in the manifest but not in the archive",
        ),
        (lambda m: [*m, m[-1]], "bundle member 'resnet/model.toml' appears twice"),
        (lambda m: [m[1], m[0], *m[2:]], "first bundle member must be manifest.json, found"),
        (lambda m: [m[0], (m[1][0], m[1][1][:63]), *m[2:]], "manifest.sig is 63 bytes, not 64"),
        (_insert("/etc/passwd"), "member '/etc/passwd' is not a safe path (it is absolute)"),
        (_insert("resnet/1/../../x"), "member 'resnet/1/../../x' is not a safe path"),
        (_insert("resnet/1/.x"), "member 'resnet/1/.x' is not a safe path"),
        (_insert("resnet/1/ln", tarfile.SYMTYPE), "member 'resnet/1/ln' is a symlink; only"),
        (_insert("resnet/1/ln", tarfile.LNKTYPE), "member 'resnet/1/ln' is a hard link"),
        (_insert("resnet/1/tty", tarfile.CHRTYPE), "member 'resnet/1/tty' is a character dev"),
        (_insert("resnet/1/fifo", tarfile.FIFOTYPE), "member 'resnet/1/fifo' is a FIFO"),
        (_insert("resnet/1/s", tarfile.GNUTYPE_SPARSE), "member 'resnet/1/s' is a sparse file"),
    ],
)
def test_tampered_archive(
    tmp_path: Path,
    bundle: Path,
    trusted: TrustedKeys,
    tamper: Callable[[list[Member]], list[Member]],
    message: str,
) -> None:
    _tar(bundle, tamper(_members(bundle)))
    _refused(bundle, trusted, tmp_path, message)


def test_flipped_byte(tmp_path: Path, bundle: Path, trusted: TrustedKeys) -> None:
    data = bytearray(bundle.read_bytes())
    data[data.index(b"dog\n")] ^= 1
    bundle.write_bytes(bytes(data))
    _refused(bundle, trusted, tmp_path, "resnet/labels.txt: sha256 mismatch (manifest ")


def test_size_over_limit(tmp_path: Path, key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    folder = tmp_path / "models" / "big"
    (folder / "1").mkdir(parents=True)
    (folder / "1" / "model.onnx").write_bytes(bytes(10_000_000))
    out = tmp_path / "big.ihb.gz"
    create_bundle(folder, key, out)
    assert out.stat().st_size < 100_000
    _, dest = _refused(out, trusted, tmp_path, "would exceed the limit of 1000000 bytes", 10**6)
    assert not dest.exists()


def test_gzip_bomb_before_the_signature(tmp_path: Path, trusted: TrustedKeys) -> None:
    info, data = _member("manifest.json", b"{}")
    info.pax_headers = {"comment": "x" * 20_000_000}  # tarfile reads a pax header whole
    with tarfile.open(tmp_path / "bomb.ihb", "w:gz", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    _refused(tmp_path / "bomb.ihb", trusted, tmp_path, "bytes before its signature")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "../etc"}, "model names use letters, digits"),
        ({"model": "m\n"}, "model names use letters, digits"),
        ({"versions": ["01"]}, "versions are whole numbers like 1 or 12"),
    ],
)
def test_signed_but_invalid_manifest(
    tmp_path: Path,
    key: Ed25519PrivateKey,
    trusted: TrustedKeys,
    changes: dict[str, object],
    message: str,
) -> None:
    path = _tar(tmp_path / "b.ihb", [*_signed(_body(**changes), key), _member("m/1/model.onnx")])
    _, dest = _refused(path, trusted, tmp_path, message)
    assert not dest.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "zip"}, "format is 'zip'"),
        ({"format_version": 2}, "format_version 2 is not supported"),
        ({"format_version": True}, "format_version True is not supported"),
        ({"model": "-x"}, "model names use letters"),
        ({"versions": []}, "non-empty list"),
        ({"versions": ["1", "1"]}, "a version twice"),
        ({"versions": ["1234567890"]}, "versions are whole numbers"),
        ({"created": 5}, "created must be"),
        ({"extra": 1}, "unknown key 'extra'"),
        ({"files": [{"path": "m/1/model.onnx", "sha256": SHA}]}, "lacks 'size'"),
        ({"files": [{"path": "m/1/model.onnx", "sha256": "AB" * 32, "size": 1}]}, "lowercase hex"),
        ({"files": [{"path": "m/1/model.onnx", "sha256": SHA, "size": 2**62 + 1}]}, "size must"),
        ({"files": [{"path": "m/1/model.onnx", "sha256": SHA, "size": 1.0}]}, "size must"),
        ({"files": []}, "version 1 has no model.onnx"),
        (_also("m/1/../x"), "not a safe path (it has a '..' component)"),
        (_also("/m/1/x"), "is not a safe path (it is absolute)"),
        (_also("m/1//x"), "it has an empty component"),
        (_also("m/1/a\\b"), "it contains a backslash"),
        (_also("m/1/a\x00b"), "it contains a control character"),
        (_also("m/1/.bundle/x"), "it has a hidden component '.bundle'"),
        (_also("other/1/x"), "is not under the model folder m/"),
        (_also("m"), "is not under the model folder m/"),
        (_also("m/2/x"), "is not in a listed version"),
        (_also("m/1/model.onnx/x"), "is both a file and a folder"),
        (_also("m/1/model.onnx"), "lists a file path twice"),
    ],
)
def test_manifest_rules(changes: dict[str, object], message: str) -> None:
    with pytest.raises(BundleError, match=re.escape(message)):
        Manifest.parse(json.dumps(_body(**changes)).encode())


@pytest.mark.parametrize("data", [b"{", b"\xff", b"[]", b'{"a": 1, "a": 2}', b'{"a": NaN}'])
def test_manifest_not_json(data: bytes) -> None:
    with pytest.raises(BundleError, match="manifest is not"):
        Manifest.parse(data)


def test_manifest_round_trip(model_dir: Path) -> None:
    made = manifest_for(model_dir, None)
    assert Manifest.parse(made.to_bytes()) == made
    assert made.to_bytes().endswith(b"}\n") and b'\n  "created"' in made.to_bytes()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", made.created)


# --- keys ---------------------------------------------------------------------------------


def test_generate_key_pair(tmp_path: Path) -> None:
    private, public = generate_key_pair(tmp_path / "keys")
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    assert private.stat().st_mode & 0o777 == 0o600
    assert public.stat().st_mode & 0o777 == 0o644
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    loaded = load_private_key(private)
    assert fingerprint(loaded.public_key()) == fingerprint(load_public_key(public))
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", fingerprint(load_public_key(public)))
    keys = load_trusted([public, public])
    assert len(keys.keys) == 1
    assert keys.signer(b"m", sign(loaded, b"m")) == fingerprint(loaded.public_key())
    assert keys.signer(b"other", sign(loaded, b"m")) is None
    with pytest.raises(ConfigError, match="already exists"):
        generate_key_pair(tmp_path / "keys")
    assert load_private_key(private).private_bytes_raw() == loaded.private_bytes_raw()


def test_wrong_key_files(tmp_path: Path) -> None:
    private, public = generate_key_pair(tmp_path)
    with pytest.raises(ConfigError, match="not an Ed25519 PEM private key"):
        load_private_key(public)
    with pytest.raises(ConfigError, match="not an Ed25519 PEM public key"):
        load_public_key(private)
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "ec.pub").write_bytes(ec_pem)
    with pytest.raises(ConfigError, match=r"ec\.pub: not an Ed25519 PEM public key"):
        load_public_key(tmp_path / "ec.pub")
    with pytest.raises(ConfigError, match=r"missing\.pub"):
        load_trusted([tmp_path / "missing.pub"])


# --- check_installed ----------------------------------------------------------------------


@pytest.fixture
def installed(tmp_path: Path, bundle: Path, trusted: TrustedKeys) -> Path:
    """The bundle imported into a fresh repository, manifests kept beside each version."""
    verified = open_bundle(bundle, trusted, tmp_path / "staging", LIMIT)
    target = tmp_path / "repo" / "resnet"
    target.parent.mkdir()
    shutil.move(verified.root, target)
    for version in verified.manifest.versions:
        keep_manifest(target / version, verified.manifest_bytes, verified.signature)
    return target


def _damage(model: Path, action: str, path: str) -> None:
    target = model / path
    if action == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 1
        target.write_bytes(bytes(data))
    elif action == "write":
        target.write_bytes(b"new")
    elif action == "link":
        target.symlink_to("/etc/passwd")
    elif action == "remove":
        shutil.rmtree(target) if target.is_dir() else target.unlink()


SHA_CHANGED = "changed since it was imported (sha256 mismatch)"
SIZE_CHANGED = "changed since it was imported (size mismatch)"
NOT_SIGNED = "not in the signed manifest"
MISSING = "is missing (it is in the signed manifest)"
SYMLINK = "is a symlink (a signed version holds regular files only)"
UNSIGNED = "not signed: no .bundle/manifest.json (it did not arrive through a verified bundle)"


@pytest.mark.parametrize(
    ("action", "path", "version", "reason"),
    [
        ("none", "", "1", None),
        ("none", "", "2", None),
        ("flip", "2/model.onnx", "2", f"resnet/2/model.onnx {SHA_CHANGED}"),
        ("flip", "model.toml", "1", f"resnet/model.toml {SHA_CHANGED}"),
        ("write", "labels.txt", "2", f"resnet/labels.txt {SIZE_CHANGED}"),
        ("write", "1/golden/b.npz", "1", f"resnet/1/golden/b.npz is {NOT_SIGNED}"),
        ("write", "extra.txt", "2", f"resnet/extra.txt is {NOT_SIGNED}"),
        ("remove", "1/golden/a.npz", "1", f"resnet/1/golden/a.npz {MISSING}"),
        ("link", "2/ln", "2", f"resnet/2/ln {SYMLINK}"),
        ("remove", f"1/{BUNDLE_DIR}", "1", UNSIGNED),
        ("none", "", "9", UNSIGNED),
    ],
)
def test_check_installed(
    installed: Path, trusted: TrustedKeys, action: str, path: str, version: str, reason: str | None
) -> None:
    _damage(installed, action, path)
    assert check_installed(installed, version, trusted) == reason


def test_check_installed_untrusted_and_unreadable(installed: Path, trusted: TrustedKeys) -> None:
    assert (installed / "1" / BUNDLE_DIR / "manifest.sig").stat().st_mode & 0o777 == 0o644
    other = TrustedKeys((Ed25519PrivateKey.generate().public_key(),))
    assert check_installed(installed, "1", other) == "signature is not by a trusted key"
    (installed / "1" / "model.onnx").chmod(0)
    reason = check_installed(installed, "1", trusted)
    assert reason is None or "model.onnx" in reason  # root reads anything; never raises
