"""Signed bundles end to end: made on one "machine" with the CLI, imported into a running hub
over HTTP and gRPC, refused when tampered with or unsigned, pulled from a local web server."""

from __future__ import annotations

import hashlib
import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from inferencehub.client import ClientError, connect
from tests.hub import Hub, running_hub, wait_for
from tests.model_builders import scale_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferencehub", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def answer(hub: Hub, model: str, version: str) -> list[float]:
    path = f"/v1/models/{model}/versions/{version}/predict"
    reply = httpx.post(hub.http_url + path, json=BODY, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()["outputs"][0]["data"]


def repository_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The connected machine: a key pair and the models to ship."""
    home = tmp_path_factory.mktemp("machine")
    made = cli("bundle", "keygen", str(home / "keys"))
    assert made.returncode == 0, made.stderr
    for name, factor in (("double", 2.0), ("triple", 3.0), ("quad", 4.0)):
        scale_model(home / "models" / name / "1" / "model.onnx", [factor] * 4)
    return home


def public_key(machine: Path) -> Path:
    return machine / "keys" / "bundle-signing.pub"


def make_bundle(machine: Path, name: str, key: Path | None = None) -> Path:
    out = machine / f"{name}.ihb"
    key = key or machine / "keys" / "bundle-signing.key"
    made = cli(
        "bundle", "create", str(machine / "models" / name), "--key", str(key), "-o", str(out)
    )
    assert made.returncode == 0, made.stderr
    return out


@pytest.fixture(scope="module")
def box(machine: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, Path]]:
    """The offline box: trusts the machine's public key."""
    root = tmp_path_factory.mktemp("box-models")
    scale_model(root / "scale" / "1" / "model.onnx", [1, 1, 1, 1])
    public = machine / "keys" / "bundle-signing.pub"
    with running_hub(root, tmp_path_factory.mktemp("box"), "--trust", str(public)) as hub:
        yield hub, root


def test_a_bundle_verifies_and_imports_over_http_and_grpc(
    machine: Path, box: tuple[Hub, Path]
) -> None:
    hub, _ = box
    bundle = make_bundle(machine, "double")
    checked = cli(
        "bundle", "verify", str(bundle), "--trust", str(machine / "keys" / "bundle-signing.pub")
    )
    assert checked.returncode == 0 and "double" in checked.stdout and "SHA256:" in checked.stdout
    imported = cli("models", "import", str(bundle), "--url", hub.http_url)
    assert imported.returncode == 0, imported.stderr
    assert "imported double version(s) 1" in imported.stdout
    assert answer(hub, "double", "1") == [2, 2, 2, 2]
    with connect(hub.grpc_url) as client:
        reply = client.import_model(make_bundle(machine, "triple"))
    assert reply["versions"] == ["1"] and reply["signer"].startswith("SHA256:")
    assert answer(hub, "triple", "1") == [3, 3, 3, 3]


def test_tampered_and_untrusted_bundles_change_nothing(
    machine: Path, box: tuple[Hub, Path], tmp_path: Path
) -> None:
    hub, root = box
    bundle = make_bundle(machine, "quad")
    tampered = tmp_path / "tampered.ihb"
    data = bundle.read_bytes()
    onnx_bytes = (machine / "models" / "quad" / "1" / "model.onnx").read_bytes()
    at = data.index(onnx_bytes) + len(onnx_bytes) // 2
    tampered.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :])
    refused = cli(
        "bundle", "verify", str(tampered), "--trust", str(machine / "keys" / "bundle-signing.pub")
    )
    assert refused.returncode == 1 and "sha256" in refused.stderr
    before = repository_files(root)
    over_http = cli("models", "import", str(tampered), "--url", hub.http_url)
    assert over_http.returncode == 1 and "sha256" in over_http.stderr
    stranger = cli("bundle", "keygen", str(tmp_path / "stranger"))
    assert stranger.returncode == 0
    untrusted = make_bundle(machine, "quad", tmp_path / "stranger" / "bundle-signing.key")
    with connect(hub.grpc_url) as client, pytest.raises(ClientError) as refusal:
        client.import_model(untrusted)
    assert refusal.value.status == "INVALID_ARGUMENT" and "trusted" in refusal.value.message
    assert repository_files(root) == before
    assert httpx.get(f"{hub.http_url}/v1/models/quad", timeout=10).status_code == 404


def test_an_existing_version_is_replaced_only_when_asked(
    machine: Path, box: tuple[Hub, Path]
) -> None:
    hub, _ = box
    scale_model(machine / "models" / "scale" / "1" / "model.onnx", [9, 9, 9, 9])
    bundle = make_bundle(machine, "scale")
    refused = httpx.post(f"{hub.http_url}/v1/repository/import", content=bundle.read_bytes())
    assert refused.status_code == 409 and "--replace" in refused.json()["error"]
    assert answer(hub, "scale", "1") == [1, 1, 1, 1]
    replaced = cli("models", "import", str(bundle), "--replace", "--url", hub.http_url)
    assert replaced.returncode == 0, replaced.stderr
    assert answer(hub, "scale", "1") == [9, 9, 9, 9]


class _Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass  # keep the test output clean


@pytest.fixture(scope="module")
def web(machine: Path) -> Iterator[str]:
    """A local web server with the machine's files (what `pull` would download)."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_Files, directory=str(machine))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_pull_saves_or_imports_a_bundle_and_a_bare_onnx(
    machine: Path, box: tuple[Hub, Path], web: str, tmp_path: Path
) -> None:
    hub, _ = box
    bundle = make_bundle(machine, "quad")
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    saved = tmp_path / "carry.ihb"
    kept = cli("pull", f"{web}/quad.ihb", "--sha256", digest, "-o", str(saved))
    assert kept.returncode == 0, kept.stderr
    assert saved.read_bytes() == bundle.read_bytes()
    wrong = cli("pull", f"{web}/quad.ihb", "--sha256", "0" * 64, "-o", str(tmp_path / "x.ihb"))
    assert wrong.returncode == 1 and "sha256" in wrong.stderr.lower()
    pulled = cli("pull", f"{web}/quad.ihb", "--sha256", digest, "--url", hub.http_url)
    assert pulled.returncode == 0, pulled.stderr
    assert answer(hub, "quad", "1") == [4, 4, 4, 4]
    onnx_url = f"{web}/models/double/1/model.onnx"
    bare = cli("pull", onnx_url, "--model", "double", "--url", hub.http_url)
    assert bare.returncode == 0, bare.stderr
    wait_for(lambda: httpx.get(f"{hub.http_url}/v1/models/double", timeout=10).status_code == 200)
    assert answer(hub, "double", "2") == [2, 2, 2, 2]


def test_require_signed_keeps_unsigned_models_out(machine: Path, tmp_path: Path) -> None:
    root = tmp_path / "models"
    scale_model(root / "scale" / "1" / "model.onnx", [1, 1, 1, 1])
    config = tmp_path / "hub.toml"
    config.write_text("[worker]\nrepository_poll_s = 0.2\n[repository]\nrequire_signed = true\n")
    public = machine / "keys" / "bundle-signing.pub"
    with running_hub(root, tmp_path, "--config", str(config), "--trust", str(public)) as hub:
        scale = httpx.get(f"{hub.http_url}/v1/models/scale", timeout=10).json()
        assert scale["versions"][0]["state"] == "FAILED"
        assert "not signed" in scale["versions"][0]["error"]
        refused = httpx.post(f"{hub.http_url}/v1/models/scale/predict", json=BODY, timeout=10)
        assert refused.status_code in (409, 503), refused.text
        imported = cli(
            "models", "import", str(make_bundle(machine, "triple")), "--url", hub.http_url
        )
        assert imported.returncode == 0, imported.stderr
        assert answer(hub, "triple", "1") == [3, 3, 3, 3]
        scale_model(root / "triple" / "1" / "model.onnx", [5, 5, 5, 5])  # changed on disk

        def refused_now() -> bool:
            version = httpx.get(f"{hub.http_url}/v1/models/triple", timeout=10).json()
            return version["versions"][0]["state"] == "FAILED"

        wait_for(refused_now, what="the changed file to be refused")
        error = httpx.get(f"{hub.http_url}/v1/models/triple", timeout=10).json()
        assert "changed" in error["versions"][0]["error"]
