"""The door: with keys, nothing but health gets in without one; keys are scoped to models,
rate-limited, and revoked on a running server; no keys on a public address means no start."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from inferencehub.keys import KeyStore
from inferencehub.protocol.tensors import tensor_from_numpy
from inferencehub.v1 import inference_pb2 as pb
from inferencehub.v1 import inference_pb2_grpc
from tests.hub import free_tcp_port, running_hub, up_command, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 1, 1, 1]}]}


def test_keys_guard_every_endpoint_but_health(repository: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = KeyStore(data)
    admin = store.create("admin")
    scoped = store.create("scoped", models=("ints",))
    limited = store.create("limited", rate_per_s=1.0)
    config = tmp_path / "hub.toml"
    config.write_text(f'data_dir = "{data}"\n')
    with running_hub(repository, tmp_path, "--config", str(config)) as hub:
        url = hub.http_url

        def post(key: str | None, model: str = "scale") -> httpx.Response:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            return httpx.post(f"{url}/v1/models/{model}/predict", json=BODY, headers=headers)

        assert httpx.get(f"{url}/v2/health/ready").status_code == 200  # open
        denied = post(None)
        assert denied.status_code == 401
        assert "needs an API key" in denied.json()["error"]
        assert httpx.get(f"{url}/v2/models/scale").status_code == 401
        assert post("ih_000000000000_" + "x" * 43).status_code == 401
        assert post(admin).status_code == 200
        forbidden = post(scoped)
        assert forbidden.status_code == 403
        assert "may not use model 'scale'" in forbidden.json()["error"]
        listing = httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer {scoped}"})
        assert [m["name"] for m in listing.json()["models"]] == ["ints"]
        assert post(limited).status_code == 200
        throttled = post(limited)
        assert throttled.status_code == 429
        assert throttled.headers["retry-after"] == "1"

        with grpc.insecure_channel(hub.grpc_target) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            request = pb.PredictRequest(
                model_name="scale", inputs=[tensor_from_numpy("x", np.ones((1, 4), np.float32))]
            )
            with pytest.raises(grpc.RpcError) as err:
                stub.Predict(request, timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            reply = stub.Predict(
                request, timeout=10, metadata=(("authorization", f"Bearer {admin}"),)
            )
            assert reply.version == "2"
            with pytest.raises(grpc.RpcError) as err:
                stub.Predict(request, timeout=10, metadata=(("authorization", f"Bearer {scoped}"),))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            # Imports (a client stream over gRPC): a key for every model, like any other call.
            codes = {}
            for who, key in (("nobody", None), ("scoped", scoped), ("admin", admin)):
                metadata = (("authorization", f"Bearer {key}"),) if key else ()
                with pytest.raises(grpc.RpcError) as err:
                    chunks = iter([pb.ImportChunk(data=b"not a bundle")])
                    stub.ImportModel(chunks, timeout=10, metadata=metadata)
                codes[who] = err.value.code()
            assert codes == {
                "nobody": grpc.StatusCode.UNAUTHENTICATED,
                "scoped": grpc.StatusCode.PERMISSION_DENIED,
                "admin": grpc.StatusCode.INVALID_ARGUMENT,  # got in: this hub trusts no key
            }

        def upload(key: str | None) -> httpx.Response:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            return httpx.post(f"{url}/v1/repository/import", content=b"x", headers=headers)

        assert upload(None).status_code == 401
        assert "every model" in upload(scoped).json()["error"]
        refused = upload(admin)
        assert refused.status_code == 400 and "trusts no signing key" in refused.json()["error"]

        # Revoking on disk reaches the running server within a second or two.
        store.revoke("admin")
        deadline = time.monotonic() + 5
        while post(admin).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert post(admin).status_code == 401
        assert admin not in hub.output()  # secrets never reach the logs


def test_public_address_without_keys_is_refused(repository: Path, tmp_path: Path) -> None:
    config = tmp_path / "hub.toml"
    config.write_text(f'data_dir = "{tmp_path / "empty"}"\n')
    result = subprocess.run(
        [
            *up_command(repository, free_tcp_port(), free_tcp_port()),
            "--host",
            "0.0.0.0",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 with no API keys" in result.stderr


def mount_like_a_secret(directory: Path, keys_json: bytes, generation: int) -> None:
    """What the kubelet does with a Secret volume: files in a timestamped dir, mode 0440 for
    the pod's fsGroup, reached through the `..data` symlink, which an update swaps atomically."""
    payload = directory / f"..{generation}"
    payload.mkdir()
    (payload / "keys.json").write_bytes(keys_json)
    (payload / "keys.json").chmod(0o440)
    swap = directory / "..data_tmp"
    swap.symlink_to(payload.name)
    swap.replace(directory / "..data")
    if not (directory / "keys.json").is_symlink():
        (directory / "keys.json").symlink_to("..data/keys.json")


def test_keys_from_a_mounted_secret_guard_a_public_address_and_rotate(
    repository: Path, tmp_path: Path
) -> None:
    made = KeyStore(tmp_path / "made")  # `inferencehub keys create` on an admin's machine
    old_key = made.create("old")
    secret = tmp_path / "secret"
    secret.mkdir()
    mount_like_a_secret(secret, made.path.read_bytes(), 1)
    config = tmp_path / "hub.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "empty"}"\n[gateway]\napi_keys_file = "secret/keys.json"\n'
    )
    # A public address is allowed: the keys come from the file the config names.
    with running_hub(repository, tmp_path, "--config", str(config), "--host", "0.0.0.0") as hub:

        def post(key: str | None) -> int:
            headers = {"authorization": f"Bearer {key}"} if key else {}
            url = f"{hub.http_url}/v1/models/scale/predict"
            return httpx.post(url, json=BODY, headers=headers, timeout=10).status_code

        assert post(None) == 401
        assert post(old_key) == 200
        # Rotation: the Secret now holds a new key instead; the gateway follows within seconds.
        made.revoke("old")
        new_key = made.create("new")
        mount_like_a_secret(secret, made.path.read_bytes(), 2)
        wait_for(lambda: post(old_key) == 401, what="the old key refused")
        assert post(new_key) == 200
        assert "API keys: 1 active" in hub.output()


def test_cli_creates_lists_and_revokes_keys(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "inferencehub", "keys"]
    data = ["--data-dir", str(tmp_path)]
    created = subprocess.run(
        [*cli, "create", "robot", "--rate", "10/s", *data],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("ih_")
    listed = subprocess.run(
        [*cli, "list", "--json", *data], capture_output=True, text=True, timeout=60
    )
    assert '"robot"' in listed.stdout and secret not in listed.stdout
    revoked = subprocess.run(
        [*cli, "revoke", "robot", *data], capture_output=True, text=True, timeout=60
    )
    assert revoked.returncode == 0
    again = subprocess.run(
        [*cli, "revoke", "robot", *data], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 2
    assert "no key named 'robot'" in again.stderr


def test_tls_on_both_public_ports(repository: Path, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    trust = ssl.create_default_context(cafile=str(cert))
    with running_hub(
        repository,
        tmp_path,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        scheme="https",
        verify=trust,
    ) as hub:
        assert "InferenceHub ready: https://127.0.0.1:" in hub.output()
        reply = httpx.post(f"{hub.http_url}/v1/models/scale/predict", json=BODY, verify=trust)
        assert reply.json()["outputs"][0]["data"] == [10, 20, 30, 40]
        with pytest.raises(httpx.HTTPError):  # plaintext is not served
            httpx.get(hub.http_url.replace("https", "http") + "/v2/health/ready", timeout=5)
        credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with grpc.secure_channel(hub.grpc_target, credentials) as channel:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            request = pb.PredictRequest(
                model_name="scale", inputs=[tensor_from_numpy("x", np.ones((1, 4), np.float32))]
            )
            assert stub.Predict(request, timeout=10).version == "2"
